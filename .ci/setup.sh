#!/usr/bin/env bash
# `make setup`: install every pinned tool the tests need. Idempotent: each step
# checks a version stamp and does nothing when it is current. Binaries are
# cached outside the repository so fresh clones on this machine reuse them.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=versions.env
source "$repo/.ci/versions.env"
cache=${XDG_CACHE_HOME:-$HOME/.cache}/bind-ha
bin=$cache/bin
stamps=$cache/stamps
mkdir -p "$bin" "$stamps"
export GOTOOLCHAIN=local CGO_ENABLED=0
# One setup at a time per cache: worktrees on this machine share it, and two builds
# of one tool would race on its binary and stamp. A second caller waits, then finds
# everything cached.
exec 9>"$cache/setup.lock"
flock 9

step() {  # step NAME VERSION FUNCTION [FILE...]: run FUNCTION unless NAME's stamp
  # says VERSION and every FILE it must have produced is present
  local name=$1 version=$2 fn=$3 start=$SECONDS
  shift 3
  if [ "$(cat "$stamps/$name" 2>/dev/null)" = "$version" ] && all_present "$@"; then
    echo "setup: $name $version: cached"
    return
  fi
  echo "setup: $name $version: installing"
  "$fn"
  echo "$version" >"$stamps/$name"
  echo "setup: $name $version: done in $((SECONDS - start))s"
}

all_present() {
  local file
  for file in "$@"; do [ -e "$file" ] || return 1; done
}

debian_packages() {
  local missing=() want pkg version
  for want in $DEBIAN_PACKAGES; do
    pkg=${want%%=*}; version=${want#*=}
    [ "$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null)" = "$version" ] || missing+=("$want")
  done
  [ ${#missing[@]} -eq 0 ] && return
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
    echo "setup: WARNING: pinned Debian versions unavailable (${missing[*]}); installing the archive's candidates." >&2
    echo "setup: WARNING: update DEBIAN_PACKAGES in .ci/versions.env to what was installed." >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]%%=*}"
  fi
}

python_venv() {
  # The venv lives in the clone, so its stamp does too (not in the cache).
  local want have
  want=$(cat "$repo/requirements-dev.txt" "$repo/constraints.txt" "$repo/pyproject.toml" | sha256sum | cut -c1-16)
  have=$(cat "$repo/.venv/.requirements-stamp" 2>/dev/null || true)
  if [ "$want" = "$have" ]; then
    echo "setup: python-venv: cached"
    return
  fi
  local start=$SECONDS
  [ -x "$repo/.venv/bin/python" ] || python3 -m venv "$repo/.venv"
  "$repo/.venv/bin/pip" install -q --disable-pip-version-check -r "$repo/requirements-dev.txt" -c "$repo/constraints.txt"
  # The package itself, editable, so `bind-ha` and `kubectl-bind_ha` are on PATH; its
  # dependencies are already pinned above, and the pinned setuptools builds it.
  "$repo/.venv/bin/pip" install -q --disable-pip-version-check --no-deps --no-build-isolation -e "$repo"
  echo "$want" >"$repo/.venv/.requirements-stamp"
  echo "setup: python-venv: done in $((SECONDS - start))s"
}

go_build() {  # go_build MODULE VERSION PACKAGE LDFLAGS: build PACKAGE into $bin
  # Built in a throw-away module rather than with `go install pkg@version`,
  # which also asks the proxy for the module's version list and fails where
  # the proxy refuses that list (it does for chart-testing).
  local module=$1 version=$2 package=$3 ldflags=$4
  local dir=$cache/build/$(basename "$package")-$version
  mkdir -p "$dir"
  (
    cd "$dir"
    export GOFLAGS=-mod=mod
    [ -f go.mod ] || go mod init "bind-ha.local/$(basename "$package")-build" >/dev/null 2>&1
    go get "$module@$version"
    go build -trimpath -ldflags "-s -w $ldflags" -o "$bin/$(basename "$package")" "$package"
  )
}

go_tools() {
  go_build helm.sh/helm/v4 "$HELM_VERSION" helm.sh/helm/v4/cmd/helm \
    "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION -X helm.sh/helm/v4/internal/version.metadata= -X helm.sh/helm/v4/internal/version.gitTreeState=clean"
  go_build github.com/helm/chart-testing/v3 "$CHART_TESTING_VERSION" github.com/helm/chart-testing/v3/ct \
    "-X github.com/helm/chart-testing/v3/ct/cmd.Version=$CHART_TESTING_VERSION"
  go_build github.com/yannh/kubeconform "$KUBECONFORM_VERSION" github.com/yannh/kubeconform/cmd/kubeconform ""
  go_build github.com/norwoodj/helm-docs "$HELM_DOCS_VERSION" github.com/norwoodj/helm-docs/cmd/helm-docs \
    "-X main.version=$HELM_DOCS_VERSION"
}

kubernetes_binaries() {
  "$repo/.ci/build-kubernetes.sh" "$bin" "$cache/build"
}

node_binaries() {
  "$repo/.ci/build-kubernetes.sh" "$bin" "$cache/build" node
}

containerd_binaries() {
  "$repo/.ci/build-kubernetes.sh" "$bin" "$cache/build" containerd
}

coredns_binary() {
  "$repo/.ci/build-kubernetes.sh" "$bin" "$cache/build" coredns
}

node_images() {
  # The pods' sandbox image and CoreDNS, each one static binary in a FROM-scratch image,
  # as OCI archives the node imports into its containerd (tests/harness/node.py).
  "$repo/.ci/build-kubernetes.sh" "$bin" "$cache/build" pause
  mkdir -p "$cache/images"
  "$repo/.ci/buildah.sh" scratch "$PAUSE_IMAGE" "$cache/images/pause.tar" 65535:65535 "$bin/pause"
  "$repo/.ci/buildah.sh" scratch "localhost/coredns:$COREDNS_VERSION" "$cache/images/coredns.tar" \
    65532:65532 "$bin/coredns"
}

offline_schemas() {
  "$repo/.venv/bin/python" "$repo/.ci/offline_schemas.py" "$SCHEMA_KUBERNETES_VERSION" "$cache/schemas"
}

total=$SECONDS
step debian-packages "$(echo "$DEBIAN_PACKAGES" | tr ' ' ,)" debian_packages
python_venv
step go-tools "$HELM_VERSION,$CHART_TESTING_VERSION,$KUBECONFORM_VERSION,$HELM_DOCS_VERSION" go_tools \
  "$bin/helm" "$bin/ct" "$bin/kubeconform" "$bin/helm-docs"
step kubernetes "$KUBERNETES_VERSION,$ETCD_VERSION" kubernetes_binaries \
  "$bin/etcd" "$bin/kube-apiserver" "$bin/kube-controller-manager" "$bin/kube-scheduler" "$bin/kubectl"
step kubernetes-node "$KUBERNETES_VERSION" node_binaries "$bin/kubelet" "$bin/kube-proxy"
step containerd "$CONTAINERD_VERSION" containerd_binaries \
  "$bin/containerd" "$bin/containerd-shim-runc-v2" "$bin/ctr"
step coredns "$COREDNS_VERSION,$(sha256sum <"$repo/.ci/node/coredns/main.go" | cut -c1-12)" coredns_binary \
  "$bin/coredns"
step node-images "$PAUSE_IMAGE,$COREDNS_VERSION,$(cat "$repo"/.ci/node/*/main.go "$repo/.ci/buildah.sh" | sha256sum | cut -c1-12)" \
  node_images "$cache/images/pause.tar" "$cache/images/coredns.tar"
step schemas "$SCHEMA_KUBERNETES_VERSION,$SCHEMA_FORMAT" offline_schemas \
  "$cache/schemas/v$SCHEMA_KUBERNETES_VERSION-standalone-strict/_definitions.json"
echo "setup: complete in $((SECONDS - total))s; tools in $bin"
