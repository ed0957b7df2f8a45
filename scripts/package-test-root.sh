#!/usr/bin/env bash
# Prepares the clean Debian 12 root that the package test (tests/package) installs our .deb
# files into: debootstrap --variant=minbase plus the Debian packages that ours depend on, so that
# the test itself runs `dpkg -i` with no network. Stored as a tarball; each test run unpacks a
# fresh copy. Takes a minute or two the first time; safe to run again. Needs root.
#
# The list below is what the packages' Depends name (shlibdeps and bubblewrap; libspdlog1.10
# provides the libspdlog1.10-fmt9 that shlibdeps names). When a package of ours gains a
# dependency, `dpkg -i` in the test fails and names it: add it here.
set -euo pipefail

MIRROR=${PMCP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
STATE_DIR=${PMCP_PACKAGE_ROOT_DIR:-/var/tmp/process-mcp-package-root}
TARBALL=$STATE_DIR/bookworm-minbase.tar
RUNTIME=(
  libboost-json1.81.0 libc6 libfmt9 libgcc-s1 libspdlog1.10 libssl3 libstdc++6
  libtomlplusplus3 libvterm0 bubblewrap
)
# The list is part of the tarball's name, so a changed list builds a new root.
stamp=$(printf '%s\n' "${RUNTIME[@]}" | sha256sum | cut -c1-12)
TARBALL=${TARBALL%.tar}-$stamp.tar

# --path: print where the tarball is (or would be), and fail when it is not built yet.
if [[ ${1:-} == --path ]]; then
  echo "$TARBALL"
  [[ -s $TARBALL ]]
  exit
fi
if [[ -s $TARBALL ]]; then
  echo "package-test-root: $TARBALL is ready"
  exit 0
fi
command -v debootstrap >/dev/null || {
  echo "package-test-root: debootstrap is missing; run scripts/setup-debian.sh" >&2
  exit 1
}
mkdir -p "$STATE_DIR"
root=$(mktemp -d "$STATE_DIR/root.XXXXXX")
trap 'rm -rf "$root"' EXIT
includes=$(IFS=,; echo "${RUNTIME[*]}")
echo "package-test-root: debootstrap bookworm from $MIRROR with $includes"
if ! debootstrap --variant=minbase --include="$includes" bookworm "$root" "$MIRROR" \
    >"$STATE_DIR/debootstrap.log" 2>&1; then
  echo "package-test-root: debootstrap failed; the end of its log:" >&2
  tail -n 30 "$STATE_DIR/debootstrap.log" >&2 || true
  exit 1
fi
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -cf "$TARBALL.part" .
mv "$TARBALL.part" "$TARBALL"
rm -f "$STATE_DIR"/bookworm-minbase-*.tar.part
echo "package-test-root: built $TARBALL"
