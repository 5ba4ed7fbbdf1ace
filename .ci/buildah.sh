#!/usr/bin/env bash
# Images without a registry or a Docker engine: buildah (a Debian package) with a
# store of its own in the cache. Each image ends as an OCI archive in
# ~/.cache/bind-ha/images, which tests/harness/node.py imports into the node's containerd.
#
#   buildah.sh scratch REF ARCHIVE USER BINARY  one static binary in a FROM-scratch image
#   buildah.sh image                            `make image`: images/Dockerfile, rebuilt only
#                                               when images/ or the base image changed
#   buildah.sh check                            exit 1 unless that image is current
#
# The Dockerfile starts FROM docker.io/library/debian:$IMAGE_SUITE-slim. No registry is
# asked for it: the base is debootstrapped (minbase) from the mirror apt already uses
# and committed under that name, once (a stamp records suite, mirror and debootstrap).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${XDG_CACHE_HOME:-$HOME/.cache}/bind-ha
stamps=$cache/stamps
images=$cache/images
base=docker.io/library/debian:$IMAGE_SUITE-slim
mkdir -p "$stamps" "$images" "$cache/build"

b() {
  buildah --root "$cache/containers/storage" --runroot "$cache/containers/run" \
    --storage-driver overlay "$@"
}

push() {  # push REF ARCHIVE: write REF as an OCI archive (atomically: readers never see half)
  local ref=$1 archive=$2
  rm -f "$archive.tmp"
  b push --quiet "$ref" "oci-archive:$archive.tmp:$ref"
  mv "$archive.tmp" "$archive"
}

scratch() {
  local ref=$1 archive=$2 user=$3 binary=$4 name ctr
  name=$(basename "$binary")
  ctr=$(b from --name "bind-ha-$name-$$" scratch)
  b copy --chmod 0755 "$ctr" "$binary" "/$name" >/dev/null
  b config --entrypoint "[\"/$name\"]" --user "$user" "$ctr"
  b commit --quiet --rm "$ctr" "$ref" >/dev/null
  push "$ref" "$archive"
  echo "image $ref -> $archive"
}

base_image() {
  local want start=$SECONDS rootfs ctr
  want="$IMAGE_SUITE,minbase,$DEBIAN_MIRROR,$(dpkg-query -W -f='${Version}' debootstrap)"
  if [ "$(cat "$stamps/base-image" 2>/dev/null)" = "$want" ] && b inspect --type image "$base" >/dev/null 2>&1; then
    echo "image: base $base: cached"
    return
  fi
  echo "image: base $base: debootstrap $IMAGE_SUITE from $DEBIAN_MIRROR"
  rootfs=$(mktemp -d "$cache/build/rootfs.XXXXXX")
  debootstrap --variant=minbase "$IMAGE_SUITE" "$rootfs" "$DEBIAN_MIRROR" >"$rootfs.log" 2>&1 || {
    tail -n 30 "$rootfs.log" >&2
    echo "image: debootstrap failed (log above)" >&2
    rm -rf "$rootfs" "$rootfs.log"
    return 1
  }
  rm -f "$rootfs.log"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
  # A tar keeps owners and modes (a plain copy would make every file root's).
  tar --numeric-owner -C "$rootfs" -cf "$rootfs.tar" .
  ctr=$(b from --name "bind-ha-base-$$" scratch)
  b add "$ctr" "$rootfs.tar" / >/dev/null
  b config --cmd '["/bin/bash"]' --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
  b commit --quiet --rm "$ctr" "$base" >/dev/null
  rm -rf "$rootfs" "$rootfs.tar"
  echo "$want" >"$stamps/base-image"
  echo "image: base $base: built in $((SECONDS - start))s"
}

image_ref() {
  echo "localhost/bind-ha:$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}/\1/p' "$repo/chart/Chart.yaml")"
}

image_stamp() {  # every file under images/, the base image's ID and the tag
  {
    (cd "$repo/images" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
    b inspect --type image --format '{{.FromImageID}}' "$base" 2>/dev/null || echo "no base image"
    image_ref
  } | sha256sum | cut -c1-16
}

image() {
  local ref archive=$images/bind-ha.tar want start=$SECONDS
  ref=$(image_ref)
  base_image
  want=$(image_stamp)
  if [ "$(cat "$stamps/bind-ha-image" 2>/dev/null)" = "$want" ] && [ -f "$archive" ]; then
    echo "image: $ref: cached ($archive)"
    return
  fi
  echo "image: $ref: building images/Dockerfile"
  b bud --quiet --pull=never --network=host --layers=false -t "$ref" "$repo/images" >/dev/null
  push "$ref" "$archive"
  b rmi --prune >/dev/null 2>&1 || true  # the previous build, now untagged
  echo "$want" >"$stamps/bind-ha-image"
  echo "image: $ref: built in $((SECONDS - start))s ($archive)"
}

check() {  # is the archive the image images/ describes now? (offline: no build)
  if [ "$(cat "$stamps/bind-ha-image" 2>/dev/null)" = "$(image_stamp)" ] && [ -f "$images/bind-ha.tar" ]; then
    echo "image: $(image_ref) is current"
    return
  fi
  echo "image: $images/bind-ha.tar is missing or older than images/: run \`make image\`" >&2
  return 1
}

case "${1:-}" in
  scratch) shift; scratch "$@" ;;
  image) image ;;
  check) check ;;
  *) echo "usage: buildah.sh scratch REF ARCHIVE USER BINARY | image | check" >&2; exit 2 ;;
esac
