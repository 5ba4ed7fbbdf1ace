#!/usr/bin/env bash
# Build pinned Kubernetes binaries, an etcd server, containerd and CoreDNS from the
# Go module proxy into $BIN_DIR. Neither k8s.io/kubernetes nor etcd's server can be
# `go install`ed directly (their go.mod files replace sibling modules with local
# paths), so each is built from a throw-away module that pins those siblings to
# their published versions. Nothing fetched is kept in the repository: only the
# small mains in .ci/node/ are ours.
# Usage: build-kubernetes.sh BIN_DIR WORK_DIR [all|kubernetes|etcd|node|containerd|coredns|pause]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
bin_dir=$1
work_dir=$2
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0

k8s_ldflags() {
  local version=${KUBERNETES_VERSION} major minor
  major=${version#v}; major=${major%%.*}
  minor=${version#v*.}; minor=${minor%%.*}
  local flags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$flags"
}

kubernetes_module() {  # the throw-away module pinning k8s.io/kubernetes and its staging modules
  local dir=$work_dir/kubernetes-$KUBERNETES_VERSION
  mkdir -p "$dir"
  cd "$dir"
  if [ ! -f go.mod ]; then
    go mod init bind-ha.local/kubernetes-build >/dev/null 2>&1
    go mod edit -require="k8s.io/kubernetes@$KUBERNETES_VERSION"
    local upstream
    upstream=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
    # Every staging module k8s.io/kubernetes replaces with ./staging/src/... is
    # published on the proxy as k8s.io/X at the matching v0.N.M tag.
    grep -oE '^\s+k8s.io/[a-z0-9-]+ => ./staging/' "$upstream" | awk '{print $1}' | while read -r mod; do
      go mod edit -replace="$mod=$mod@$KUBERNETES_STAGING_VERSION"
    done
    go get "k8s.io/kubernetes/cmd/kube-apiserver@$KUBERNETES_VERSION" \
      "k8s.io/kubernetes/cmd/kube-controller-manager@$KUBERNETES_VERSION" \
      "k8s.io/kubernetes/cmd/kube-scheduler@$KUBERNETES_VERSION" \
      "k8s.io/kubernetes/cmd/kubectl@$KUBERNETES_VERSION"
  fi
}

build_k8s_commands() {  # build_k8s_commands CMD...: build k8s.io/kubernetes/cmd/CMD into $bin_dir
  local ldflags cmd
  ldflags=$(k8s_ldflags)
  for cmd in "$@"; do
    local start=$SECONDS
    go build -trimpath -ldflags "$ldflags" -o "$bin_dir/$cmd" "k8s.io/kubernetes/cmd/$cmd"
    echo "built $cmd $KUBERNETES_VERSION in $((SECONDS - start))s"
  done
}

build_kubernetes() {
  kubernetes_module
  build_k8s_commands kube-apiserver kube-controller-manager kube-scheduler kubectl
}

build_node() {  # the node agents, from the same module (their packages resolve like the rest)
  kubernetes_module
  build_k8s_commands kubelet kube-proxy
}

build_containerd() {
  local dir=$work_dir/containerd-$CONTAINERD_VERSION module=github.com/containerd/containerd/v2
  mkdir -p "$dir"
  cd "$dir"
  if [ ! -f go.mod ]; then
    go mod init bind-ha.local/containerd-build >/dev/null 2>&1
    go get "$module@$CONTAINERD_VERSION"
  fi
  local ldflags="-s -w -X $module/version.Version=$CONTAINERD_VERSION -X $module/version.Package=$module"
  for cmd in containerd containerd-shim-runc-v2 ctr; do
    local start=$SECONDS
    go build -trimpath -ldflags "$ldflags" -o "$bin_dir/$cmd" "$module/cmd/$cmd"
    echo "built $cmd $CONTAINERD_VERSION in $((SECONDS - start))s"
  done
}

build_coredns() {  # CoreDNS with only the plugins .ci/node/coredns/main.go imports
  local dir=$work_dir/coredns-$COREDNS_VERSION
  mkdir -p "$dir"
  cp "$here/node/coredns/main.go" "$dir/main.go"
  cd "$dir"
  if [ ! -f go.mod ]; then
    go mod init bind-ha.local/coredns-build >/dev/null 2>&1
    go get "github.com/coredns/coredns@$COREDNS_VERSION"
  fi
  local start=$SECONDS
  go build -trimpath -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" \
    -o "$bin_dir/coredns" .
  echo "built coredns $COREDNS_VERSION in $((SECONDS - start))s"
}

build_pause() {  # the sandbox process (.ci/node/pause/main.go): no dependencies
  local dir=$work_dir/pause
  mkdir -p "$dir"
  cp "$here/node/pause/main.go" "$dir/main.go"
  cd "$dir"
  [ -f go.mod ] || go mod init bind-ha.local/pause >/dev/null 2>&1
  go build -trimpath -ldflags "-s -w" -o "$bin_dir/pause" .
  echo "built pause"
}

build_etcd() {
  local dir=$work_dir/etcd-$ETCD_VERSION
  mkdir -p "$dir"
  cd "$dir"
  if [ ! -f go.mod ]; then
    go mod init bind-ha.local/etcd-build >/dev/null 2>&1
    # The server module's own go.mod points its siblings at ../api etc.; a
    # consumer module ignores those replaces, so pinning the siblings is enough.
    for mod in server/v3 api/v3 client/pkg/v3 client/v3 pkg/v3; do
      go mod edit -require="go.etcd.io/etcd/$mod@$ETCD_VERSION"
    done
    go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  fi
  local start=$SECONDS
  go build -trimpath -ldflags "-s -w" -o "$bin_dir/etcd" go.etcd.io/etcd/server/v3
  echo "built etcd $ETCD_VERSION in $((SECONDS - start))s"
}

mkdir -p "$bin_dir" "$work_dir"
case "${3:-all}" in
  kubernetes) build_kubernetes ;;
  etcd) build_etcd ;;
  node) build_node ;;
  containerd) build_containerd ;;
  coredns) build_coredns ;;
  pause) build_pause ;;
  all) (build_etcd) && build_kubernetes ;;
  *) echo "build-kubernetes.sh: unknown target $3" >&2; exit 2 ;;
esac
