#!/usr/bin/env bash
# Prepares a Docker engine for the docker executor's tests: starts dockerd when none answers on
# the default socket (vfs storage and no iptables, which work on any machine), then builds the
# local test images with `docker import`, because the tests have no registry to pull from:
#   pmcp-test-busybox:latest  from Debian's busybox-static (tiny; the executor's own tests);
#   pmcp-test-debian:latest   a minimal Debian 12 made with debootstrap, with python3, vim, less
#                             and procps (the end-to-end suite in docker mode). Takes a minute or
#                             more the first time; the image stays in the engine afterwards.
# Safe to run again. Needs root.
set -euo pipefail

DOCKER=/usr/bin/docker        # the client of Debian's docker.io, not another one on PATH
SOCKET=unix:///var/run/docker.sock
IMAGE=pmcp-test-busybox:latest
DEBIAN_IMAGE=pmcp-test-debian:latest
DEBIAN_MIRROR=${PMCP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
STATE_DIR=${PMCP_DOCKERD_DIR:-/var/tmp/process-mcp-dockerd}
export DOCKER_HOST=$SOCKET

for tool in "$DOCKER" dockerd /bin/busybox debootstrap; do
  if [[ ! -x $(command -v "$tool" || true) ]]; then
    echo "docker-test-env: $tool is missing; run scripts/setup-debian.sh" >&2
    exit 1
  fi
done

mkdir -p "$STATE_DIR"
scratch=()
trap 'rm -rf "${scratch[@]}"' EXIT
if ! "$DOCKER" version >/dev/null 2>&1; then
  echo "docker-test-env: starting dockerd (log: $STATE_DIR/dockerd.log)"
  setsid dockerd --iptables=false --storage-driver=vfs --host="$SOCKET" \
    >"$STATE_DIR/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 1 120); do
    "$DOCKER" version >/dev/null 2>&1 && break
    sleep 0.5
  done
  if ! "$DOCKER" version >/dev/null 2>&1; then
    echo "docker-test-env: dockerd did not come up; the end of its log:" >&2
    tail -n 30 "$STATE_DIR/dockerd.log" >&2 || true
    exit 1
  fi
fi
version=$("$DOCKER" version -f '{{.Server.Version}} (API {{.Server.APIVersion}})')
echo "docker-test-env: engine $version"

if ! "$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1; then
  root=$(mktemp -d)
  scratch+=("$root")
  mkdir -p "$root"/{bin,etc,tmp,root,proc,sys,dev,home}
  cp /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [[ $applet == busybox ]] || ln -s busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
  printf 'root:x:0:\n' >"$root/etc/group"
  tar -C "$root" -c . | "$DOCKER" import -c 'ENV PATH=/bin' -c 'CMD ["sh"]' - "$IMAGE" >/dev/null
  echo "docker-test-env: built $IMAGE"
fi

if ! "$DOCKER" image inspect "$DEBIAN_IMAGE" >/dev/null 2>&1; then
  debian_root=$(mktemp -d)
  scratch+=("$debian_root")
  echo "docker-test-env: building $DEBIAN_IMAGE with debootstrap from $DEBIAN_MIRROR"
  if ! debootstrap --variant=minbase --include=python3,vim,less,procps,libstdc++6 \
      bookworm "$debian_root" "$DEBIAN_MIRROR" >"$STATE_DIR/debootstrap.log" 2>&1; then
    echo "docker-test-env: debootstrap failed; the end of its log:" >&2
    tail -n 30 "$STATE_DIR/debootstrap.log" >&2 || true
    exit 1
  fi
  # What a test never reads: package caches, documentation, translations.
  rm -rf "$debian_root"/var/cache/apt/archives/*.deb "$debian_root"/var/lib/apt/lists/* \
    "$debian_root"/usr/share/doc/* "$debian_root"/usr/share/man/* \
    "$debian_root"/usr/share/locale/* "$debian_root"/usr/share/info/*
  tar -C "$debian_root" -c . | "$DOCKER" import -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    -c 'CMD ["bash"]' - "$DEBIAN_IMAGE" >/dev/null
  echo "docker-test-env: built $DEBIAN_IMAGE"
fi
