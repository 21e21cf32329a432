#!/usr/bin/env bash
# Build the alea container image from this source tree and print its name and size.
#
#   scripts/build_image.sh            # localhost/alea:<git revision>, also tagged localhost/alea:dev
#   ALEA_IMAGE=registry.example.com/alea scripts/build_image.sh   # another name, same tags
#   scripts/build_image.sh --cuda     # localhost/alea-cuda:<revision> from Containerfile.cuda
#
# No registry is needed: the base is a Debian bookworm root filesystem debootstrapped from
# the apt mirror this host uses (ALEA_DEBIAN_MIRROR to choose another), and the Python
# dependencies are wheels downloaded here with this host's pip (the build itself never
# reaches the network). Both are cached under $ALEA_BUILD_CACHE (default
# ~/.cache/alea-build), keyed by what they are made of, so a rebuild only repeats what
# changed. Builds with buildah (daemonless, chroot isolation); with ALEA_BUILDER=docker,
# or where buildah is missing and a Docker daemon answers, with `docker build`.
# Needs root for debootstrap and buildah (rootless buildah works once the base exists).
# The CUDA variant starts from NVIDIA's CUDA image (a registry must be reachable) with
# Ubuntu 24.04's Python 3.12, and adds PyCUDA from its sdist.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CACHE=${ALEA_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/alea-build}
SUITE=bookworm
BASE_PACKAGES=python3.11,ca-certificates
if [ "${1:-}" = --cuda ]; then
  VARIANT=cuda IMAGE=${ALEA_IMAGE:-localhost/alea-cuda} CONTAINERFILE=Containerfile.cuda
  PYTHON_VERSION=3.12 GLIBC_MINOR=39  # Ubuntu 24.04
else
  VARIANT=cpu IMAGE=${ALEA_IMAGE:-localhost/alea} CONTAINERFILE=Containerfile
  PYTHON_VERSION=3.11 GLIBC_MINOR=36  # Debian bookworm
fi
ABI=cp${PYTHON_VERSION/./}
# Runtime dependencies are the project's, less those only a developer uses: grpcio-tools
# generates code (gen/ is committed) and matplotlib draws `alea results --plot`.
IMAGE_EXCLUDES="grpcio-tools matplotlib"
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=$(command -v python3)

log() { printf '[build_image] %s\n' "$*" >&2; }
sha() { sha256sum | cut -c1-16; }

builder=${ALEA_BUILDER:-}
if [ -z "$builder" ]; then
  if command -v buildah >/dev/null; then builder=buildah
  elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then builder=docker
  else
    echo "build_image: neither buildah nor a running Docker daemon found" \
         "(Debian: apt-get install buildah podman runc debootstrap)" >&2
    exit 1
  fi
fi

mirror() {
  if [ -n "${ALEA_DEBIAN_MIRROR:-}" ]; then echo "$ALEA_DEBIAN_MIRROR"; return; fi
  # The first Debian archive this host's apt uses (deb822 or one-line sources).
  local found
  found=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/ {print $2}' \
          | grep -v security | head -1 || true)
  [ -n "$found" ] || found=$(grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
          2>/dev/null | grep -v security | awk '{print $2}' | head -1 || true)
  echo "${found:-http://deb.debian.org/debian}"
}

# --- base: Debian minbase + python3.11, trimmed, cached as a tarball --------------------
base_image() {
  local key tag tarball rootfs
  key=$(printf '%s %s %s v1' "$SUITE" "$BASE_PACKAGES" "$(uname -m)" | sha)
  tag=localhost/alea-base:$key
  tarball=$CACHE/base-$key.tar
  if [ "$builder" = buildah ] && buildah inspect --type image "$tag" >/dev/null 2>&1; then
    echo "$tag"; return
  fi
  if [ "$builder" = docker ] && docker image inspect "$tag" >/dev/null 2>&1; then
    echo "$tag"; return
  fi
  if [ ! -f "$tarball" ]; then
    command -v debootstrap >/dev/null || { echo "build_image: debootstrap is missing" >&2; exit 1; }
    rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    log "debootstrap $SUITE ($BASE_PACKAGES) from $(mirror) ..."
    debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$rootfs" "$(mirror)" \
      > "$CACHE/debootstrap.log" 2>&1 || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
    # Package caches, lists and documentation are not needed to run anything.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
           "$rootfs"/usr/share/doc "$rootfs"/usr/share/man "$rootfs"/usr/share/info \
           "$rootfs"/usr/share/locale "$rootfs"/var/log/*
    tar -C "$rootfs" --numeric-owner -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
  fi
  log "importing the base image $tag"
  if [ "$builder" = buildah ]; then
    local ctr
    ctr=$(buildah from scratch)
    buildah add --quiet "$ctr" "$tarball" / >/dev/null
    buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
    buildah commit --quiet --rm "$ctr" "$tag" >/dev/null
  else
    docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      "$tarball" "$tag" >/dev/null
  fi
  echo "$tag"
}

# --- wheels: every runtime dependency for the image's CPython, as manylinux wheels ---------
wheels_dir() {
  local requirements key dir platforms
  requirements=$("$PY" - "$IMAGE_EXCLUDES" <<'PY'
import re, sys, tomllib
excluded = set(sys.argv[1].split())
for dep in tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]:
    if re.split(r"[\s\[<>=!~;]", dep, maxsplit=1)[0].lower() not in excluded:
        print(dep)
PY
)
  # Any manylinux wheel up to the image's glibc runs in it.
  platforms=$(for v in $(seq "$GLIBC_MINOR" -1 17); do
    printf -- '--platform manylinux_2_%s_%s ' "$v" "$(uname -m)"; done)
  key=$(printf '%s\n%s %s %s v1' "$requirements" "$platforms" "$ABI" "$VARIANT" | sha)
  dir=$CACHE/wheels-$key
  if [ ! -f "$dir/.complete" ]; then
    log "downloading wheels for the image into $dir ..."
    rm -rf "$dir" && mkdir -p "$dir"
    printf '%s\n' "$requirements" > "$dir/requirements.txt"
    local extra=()
    # PyCUDA has no wheels: its sdist, its dependencies and what building it needs.
    [ "$VARIANT" = cuda ] && extra=(pytools platformdirs mako siphash24 setuptools wheel)
    # shellcheck disable=SC2086  # $platforms is a list of options
    "$PY" -m pip download --quiet --dest "$dir" --only-binary=:all: \
      --python-version "$PYTHON_VERSION" --implementation cp --abi "$ABI" $platforms \
      --requirement "$dir/requirements.txt" pip "${extra[@]}" 2>&1 \
      | grep -v "is ignored: it is neither" >&2 || true
    if [ "$VARIANT" = cuda ]; then
      "$PY" -m pip download --quiet --dest "$dir" --no-deps --no-binary=:all: pycuda
    fi
    ls "$dir"/pip-*.whl >/dev/null 2>&1 || { echo "build_image: wheel download failed" >&2; exit 1; }
    touch "$dir/.complete"
  fi
  echo "$dir"
}

mkdir -p "$CACHE"
started=$SECONDS
base=
if [ "$VARIANT" = cpu ]; then
  base=$(base_image)
  # The name Containerfile's BASE defaults to, so that other images can build on it too.
  if [ "$builder" = buildah ]; then buildah tag "$base" localhost/alea-base:$SUITE
  else docker tag "$base" localhost/alea-base:$SUITE; fi
fi
wheels=$(wheels_dir)

context=$(mktemp -d "$CACHE/context.XXXXXX")
trap 'rm -rf "$context"' EXIT
mkdir -p "$context/wheels" "$context/app"
# Hard links when the cache shares a filesystem with the context (it does: both in $CACHE).
cp -l "$wheels"/* "$context/wheels/" 2>/dev/null || cp "$wheels"/* "$context/wheels/"
ln "$(ls "$context"/wheels/pip-*.whl | head -1)" "$context/wheels/pip.whl" 2>/dev/null \
  || cp "$(ls "$context"/wheels/pip-*.whl | head -1)" "$context/wheels/pip.whl"
tar -C "$ROOT" --exclude=__pycache__ --exclude='*.pyc' -cf - services gen envoy \
  | tar -C "$context/app" -xf -

revision=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
if [ "$revision" != unknown ] && [ -n "$(git status --porcelain -- services gen envoy)" ]; then
  revision=$revision-dirty
fi
build_args=()
[ -n "$base" ] && build_args=(--build-arg "BASE=$base")
log "building $IMAGE:$revision from $CONTAINERFILE with $builder ${base:+(base $base)}"
if [ "$builder" = buildah ]; then
  buildah bud --quiet --layers --isolation chroot "${build_args[@]}" \
    -f "$ROOT/$CONTAINERFILE" -t "$IMAGE:$revision" -t "$IMAGE:dev" "$context" >/dev/null
  # awk reads every line (head would end the pipe early: SIGPIPE under pipefail).
  size=$(buildah images --noheading --format '{{.Size}}' "$IMAGE:$revision" | awk 'NR == 1')
else
  DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0} docker build --quiet "${build_args[@]}" \
    -f "$ROOT/$CONTAINERFILE" -t "$IMAGE:$revision" -t "$IMAGE:dev" "$context" >/dev/null
  size="$(($(docker image inspect --format '{{.Size}}' "$IMAGE:$revision") / 1000000)) MB"
fi
log "built in $((SECONDS - started)) s"
# The last line is the image and its uncompressed size (what scripts and tests read).
printf '%s:%s %s\n' "$IMAGE" "$revision" "$size"
