#!/usr/bin/env bash
# Prepares a Docker engine for the docker executor's tests: starts dockerd when none answers on
# the default socket (vfs storage and no iptables, which work on any machine), then builds the
# local test image pmcp-test-busybox:latest from Debian's busybox-static with `docker import`,
# because the tests have no registry to pull from. Safe to run again. Needs root.
set -euo pipefail

DOCKER=/usr/bin/docker        # the client of Debian's docker.io, not another one on PATH
SOCKET=unix:///var/run/docker.sock
IMAGE=pmcp-test-busybox:latest
STATE_DIR=${PMCP_DOCKERD_DIR:-/var/tmp/process-mcp-dockerd}
export DOCKER_HOST=$SOCKET

for tool in "$DOCKER" dockerd /bin/busybox; do
  if [[ ! -x $(command -v "$tool" || true) ]]; then
    echo "docker-test-env: $tool is missing; run scripts/setup-debian.sh" >&2
    exit 1
  fi
done

if ! "$DOCKER" version >/dev/null 2>&1; then
  mkdir -p "$STATE_DIR"
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
  trap 'rm -rf "$root"' EXIT
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
