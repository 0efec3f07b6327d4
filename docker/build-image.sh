#!/usr/bin/env bash
# Builds a Docker image from a context that holds only the listed files, and only when its
# inputs changed: the sha256 of the Dockerfile, the files and (if BASE_IMAGE is set) the base
# image's ID is stored as a label on the image; an image with the same label is kept as it is.
#
# usage: docker/build-image.sh TAG DOCKERFILE FILE...
#   FILE is a path relative to the repository root, copied to the same path in the context,
#   or DEST=SRC to place SRC at DEST (e.g. consul=$HOME/.cache/mysqlpilot/bin/consul).
#   BASE_IMAGE=...  passed as --build-arg BASE_IMAGE and part of the inputs
#   FORCE=1         build even if unchanged
set -euo pipefail

[ $# -ge 3 ] || { echo "usage: $0 TAG DOCKERFILE FILE..." >&2; exit 2; }
tag=$1 dockerfile=$2
shift 2

die() { echo "build-image: $*" >&2; exit 1; }
docker info >/dev/null 2>&1 ||
  die "docker daemon not reachable: start it with 'service docker start' (or run 'dockerd &' as root), then retry"

args=()
base_id=
if [ -n "${BASE_IMAGE:-}" ]; then
  base_id=$(docker image inspect -f '{{.Id}}' "$BASE_IMAGE" 2>/dev/null) ||
    die "base image $BASE_IMAGE not found: build it with 'make image-base' (docker/make-base-image.sh)"
  args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
fi
srcs=("$dockerfile")
for f in "$@"; do
  src=${f#*=}
  [ -f "$src" ] || die "$src is missing (needed to build $tag)"
  srcs+=("$src")
done

inputs=$({ sha256sum "${srcs[@]}" | cut -d' ' -f1; printf '%s\n' "$@" | cut -d= -f1; echo "base $base_id"; } |
  sha256sum | cut -c1-16)
have=$(docker image inspect -f '{{index .Config.Labels "mysqlpilot.inputs"}}' "$tag" 2>/dev/null || true)
if [ "${FORCE:-0}" != 1 ] && [ "$have" = "$inputs" ]; then
  echo "build-image: $tag is up to date"
  exit 0
fi

# A minimal context: the daemon receives these files only, not the whole repository.
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
for f in "$@"; do
  dest=${f%%=*} src=${f#*=}
  mkdir -p "$ctx/$(dirname "$dest")"
  ln "$src" "$ctx/$dest" 2>/dev/null || cp "$src" "$ctx/$dest"
done

echo "build-image: building $tag ..."
t0=$SECONDS
old_id=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
# -q prints only the image ID; the legacy builder's deprecation notice (no buildx here) is
# noise, so the output is shown only when the build fails.
if ! out=$(DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0} docker build -q ${args[@]+"${args[@]}"} \
    --label "mysqlpilot.inputs=$inputs" -f "$dockerfile" -t "$tag" "$ctx" 2>&1); then
  echo "$out" >&2
  die "docker build of $tag failed (output above)"
fi
# The replaced image would linger as <none>: drop it unless a container still uses it.
if [ -n "$old_id" ] && [ "$old_id" != "$(docker image inspect -f '{{.Id}}' "$tag")" ]; then
  docker rmi "$old_id" >/dev/null 2>&1 || true
fi
echo "build-image: built $tag in $((SECONDS - t0))s ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{ printf "%.0f MiB", $1 / 1048576 }'))"
