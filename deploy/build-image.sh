#!/usr/bin/env bash
# Build the service image with no network inside the build (deploy/Dockerfile):
#   1. the base: Debian (minbase) with python3 and python3-venv, made by debootstrap and imported
#      with `docker import`, cached under $TUNER_IMAGE_CACHE keyed by the Debian suite;
#   2. the wheelhouse: `pip wheel` of tuner and its postgres and kubernetes extras, made here;
#   3. `docker build` with the base as build argument and the wheelhouse as the only context.
# Usage: deploy/build-image.sh [TAG]   (default tuner:latest; docker reached through $DOCKER_HOST)
# Environment: SUITE (bookworm), MIRROR, PYTHON (the python3 the wheels are built with: its
# version must be the base's), TUNER_IMAGE_CACHE (~/.cache/tuner-image), BASE (skip step 1 and use
# this image instead).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tag="${1:-tuner:latest}"
suite="${SUITE:-bookworm}"
mirror="${MIRROR:-http://deb.debian.org/debian}"
python="${PYTHON:-python3}"
cache="${TUNER_IMAGE_CACHE:-$HOME/.cache/tuner-image}"
mkdir -p "$cache"

if [ -z "${BASE:-}" ]; then
    BASE="tuner-base:debian-$suite"
    tarball="$cache/debian-$suite-python3.tar"
    if [ ! -s "$tarball" ]; then
        rootfs="$cache/rootfs-$suite"
        rm -rf "$rootfs"
        echo "build-image: debootstrap $suite (minbase + python3, a few minutes, cached)" >&2
        debootstrap --variant=minbase --include=python3,python3-venv "$suite" "$rootfs" "$mirror" \
            >"$cache/debootstrap-$suite.log" 2>&1 \
            || { tail -n 20 "$cache/debootstrap-$suite.log" >&2; exit 1; }
        rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
        tar -C "$rootfs" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
        rm -rf "$rootfs"
    fi
    if ! docker image inspect "$BASE" >/dev/null 2>&1; then
        docker import "$tarball" "$BASE" >/dev/null
    fi
fi

context="$(mktemp -d)"
trap 'rm -rf "$context"' EXIT
echo "build-image: wheelhouse" >&2
# Wheels of the dependencies are kept between builds; tuner's own is made afresh each time.
rm -f "$cache"/wheels/tuner-*.whl
"$python" -m pip wheel --quiet --disable-pip-version-check --find-links "$cache/wheels" \
    -w "$cache/wheels" "$root[postgres,kubernetes,tfevent,grpc]"
mkdir "$context/wheels"
cp "$cache"/wheels/*.whl "$context/wheels/"
rm -f "$cache"/wheels/tuner-*.whl
echo "build-image: docker build $tag (base $BASE)" >&2
docker build --quiet --network none --build-arg "BASE=$BASE" -f "$root/deploy/Dockerfile" \
    -t "$tag" "$context" >/dev/null
echo "$tag"
