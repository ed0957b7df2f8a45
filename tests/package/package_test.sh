#!/usr/bin/env bash
# The Debian packages, end to end: builds them with cpack, checks them with lintian, installs
# them with dpkg -i into a clean Debian 12 root (scripts/package-test-root.sh), runs the
# installed server there through the official MCP client (stdio and HTTP), then removes one
# plugin package and checks that the core reports the missing plugin clearly.
#
# usage: package_test.sh <source dir> <build dir>
# Needs root (chroot and mounts, in a private mount namespace that ends with the test) and
# `npm ci --prefix tests/e2e`. Sends no traffic beyond 127.0.0.1.
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 <source dir> <build dir>" >&2
  exit 2
fi
source_dir=$(cd "$1" && pwd)
build_dir=$(cd "$2" && pwd)

step() { printf '== %s\n' "$*"; }
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  exit 1
}

# Everything below runs in a mount namespace of its own, so every mount goes away with it.
if [[ ${PMCP_PACKAGE_TEST_NS:-} != 1 ]]; then
  [[ $(id -u) -eq 0 ]] || fail "the package test needs root (dpkg in a chroot, mounts)"
  export PMCP_PACKAGE_TEST_NS=1
  exec unshare --mount --propagation private -- bash "$0" "$@"
fi

tarball=$(bash "$source_dir/scripts/package-test-root.sh" --path) ||
  fail "no clean root at $tarball: run scripts/package-test-root.sh (root, network) first"
node=$(command -v node) || fail "node is missing"
[[ -d $source_dir/tests/e2e/node_modules/@modelcontextprotocol/sdk ]] ||
  fail "the official MCP client is missing: npm ci --prefix tests/e2e"

work=$(mktemp -d "${TMPDIR:-/tmp}/pmcp-package-test.XXXXXX")
cleanup() {
  local code=$?
  umount -R "$work/root" 2>/dev/null || true
  rm -rf "$work"
  exit $code
}
trap cleanup EXIT

step "build the packages (cpack) from $build_dir"
rm -rf "$work/packages"
(cd "$build_dir" && cpack -G DEB -B "$work/cpack" -D CPACK_OUTPUT_FILE_PREFIX="$work/packages" \
  >"$work/cpack.log" 2>&1) ||
  { cat "$work/cpack.log" >&2; fail "cpack failed"; }
mapfile -t debs < <(ls "$work"/packages/*.deb)
expected=(process-mcp process-mcp-dev process-mcp-net-bridge process-mcp-plugin-docker
          process-mcp-plugin-host process-mcp-transport-http process-mcp-transport-stdio)
names=()
for deb in "${debs[@]}"; do names+=("$(dpkg-deb -f "$deb" Package)"); done
[[ $(printf '%s\n' "${names[@]}" | sort | tr '\n' ' ') == "$(printf '%s\n' "${expected[@]}" | sort | tr '\n' ' ')" ]] ||
  fail "cpack made ${names[*]}; expected ${expected[*]}"
for deb in "${debs[@]}"; do
  printf '   %-32s %s\n' "$(dpkg-deb -f "$deb" Package)" "Depends: $(dpkg-deb -f "$deb" Depends)"
done

step "the plugins depend on the core's ABI, not on its version"
abi=$(dpkg-deb -f "$work"/packages/process-mcp_*.deb Provides)
[[ $abi =~ ^process-mcp-abi-[0-9]+\.[0-9]+$ ]] || fail "process-mcp provides '$abi', not process-mcp-abi-X.Y"
for deb in "$work"/packages/process-mcp-plugin-*.deb "$work"/packages/process-mcp-transport-*.deb; do
  depends=$(dpkg-deb -f "$deb" Depends)
  [[ $depends == *"$abi"* ]] || fail "$(basename "$deb") does not depend on $abi: $depends"
  [[ $depends != *"process-mcp ("* ]] || fail "$(basename "$deb") depends on the core's version: $depends"
done
[[ $(dpkg-deb -f "$work"/packages/process-mcp-plugin-host_*.deb Depends) == *bubblewrap* ]] ||
  fail "process-mcp-plugin-host does not depend on bubblewrap"

step "lintian: no errors"
command -v lintian >/dev/null || fail "lintian is missing: run scripts/setup-debian.sh"
set +e
lintian_out=$(lintian --fail-on error --tag-display-limit 0 "${debs[@]}" 2>&1)
code=$?
set -e
lintian_out=$(printf '%s\n' "$lintian_out" | grep -v '^running with root privileges' || true)
[[ -z $lintian_out ]] || printf '%s\n' "$lintian_out" | sed 's/^/   /'
[[ $code -eq 0 ]] || fail "lintian reports errors (exit $code)"
printf '   lintian: %s warnings, 0 errors\n' "$(printf '%s\n' "$lintian_out" | grep -c '^W:' || true)"

step "a clean Debian 12 root from $(basename "$tarball")"
root=$work/root
mkdir -p "$root"
tar -C "$root" -xf "$tarball"
# pivot_root (bubblewrap) needs the root to be a mount point; the rest is what a booted system has.
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount -t tmpfs tmpfs "$root/tmp"
mount -t tmpfs tmpfs "$root/run"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

step "dpkg -i of every package"
mkdir -p "$root/tmp/debs"
cp "${debs[@]}" "$root/tmp/debs/"
in_root sh -c 'dpkg -i /tmp/debs/*.deb' >"$work/dpkg.log" 2>&1 ||
  { cat "$work/dpkg.log" >&2; fail "dpkg -i failed (a missing dependency belongs in scripts/package-test-root.sh)"; }
in_root dpkg -s process-mcp process-mcp-plugin-host process-mcp-transport-stdio >/dev/null

step "the installed files"
for f in /usr/bin/process-mcp /etc/process-mcp/process-mcp.toml /etc/process-mcp/http.toml \
         /lib/systemd/system/process-mcp-http.service /usr/share/man/man1/process-mcp.1.gz \
         /usr/include/pmcp/plugin.h /usr/include/pmcp/config_check.h \
         /usr/share/process-mcp/plugin-template/CMakeLists.txt; do
  [[ -e $root$f ]] || fail "$f is not installed"
done
[[ -z $(ls "$root"/etc/systemd/system/multi-user.target.wants/process-mcp* 2>/dev/null) ]] ||
  fail "process-mcp-http.service is enabled; it must be installed disabled"
in_root dpkg-query -W -f='${Conffiles}\n' process-mcp | grep -q /etc/process-mcp/http.toml ||
  fail "/etc/process-mcp/http.toml is not a conffile"

step "process-mcp --list-plugins"
list=$(in_root process-mcp --list-plugins)
printf '%s\n' "$list" | sed 's/^/   /'
plugindir=$(in_root sh -c 'ls -d /usr/lib/*/process-mcp/plugins')
for id in host docker stdio http; do
  printf '%s\n' "$list" | grep -Eq "^$id +0\.1\.0 +abi 0\.1 +$plugindir/pmcp-$id\.so$" ||
    fail "--list-plugins does not show '$id' with version, ABI and path"
done

step "process-mcp --check-config (default config, packaged HTTP config, a broken one)"
in_root process-mcp --check-config >/dev/null || fail "the default config does not pass --check-config"
in_root process-mcp --config /etc/process-mcp/http.toml --check-config >/dev/null ||
  fail "/etc/process-mcp/http.toml does not pass --check-config"
printf 'executor = "host"\ntransports = ["http"]\n\n[http]\nlisten = "127.0.0.1:8080"\nlisen = 1\n' \
  >"$root/tmp/broken.toml"
set +e
broken=$(in_root process-mcp --config /tmp/broken.toml --check-config 2>&1 >/dev/null)
code=$?
set -e
printf '   %s\n' "$broken"
[[ $code -eq 2 && $broken == *"/tmp/broken.toml:4"* && $broken == *lisen* ]] ||
  fail "--check-config of a config with [http] lisen: exit $code, '$broken'"

step "the official MCP client against the installed server"
mkdir -p "$root/var/lib/process-mcp"  # the unit's StateDirectory, which systemd would make
"$node" "$source_dir/tests/e2e/clients/installed_server.mjs" chroot "$root"

step "the systemd unit: systemd-analyze verify, and its exposure"
unit_dir=$work/unit
mkdir -p "$unit_dir"
# Verified on this machine with the server of the build tree in ExecStart (verify checks that the
# program exists); any complaint, such as an unknown key, fails the test.
sed "s|/usr/bin/process-mcp|$build_dir/bin/process-mcp|g" \
  "$root/lib/systemd/system/process-mcp-http.service" >"$unit_dir/process-mcp-http.service"
if command -v systemd-analyze >/dev/null; then
  verify=$(systemd-analyze verify --man=no "$unit_dir/process-mcp-http.service" 2>&1) ||
    fail "systemd-analyze verify: $verify"
  [[ -z $verify ]] || fail "systemd-analyze verify complains: $verify"
  printf '   %s\n' "$(systemd-analyze security --offline=true "$unit_dir/process-mcp-http.service" \
    2>/dev/null | tail -n1)"
else
  fail "systemd-analyze is missing: run scripts/setup-debian.sh"
fi

step "as the unit runs it: unprivileged, no_new_privs, no capabilities; the sandbox still works"
# The packages unpacked in a folder the unprivileged user can read; its working directory.
hardened=$work/hardened
mkdir -p "$hardened/prefix" "$hardened/work"
for deb in "${debs[@]}"; do dpkg-deb -x "$deb" "$hardened/prefix"; done
chmod 755 "$work" "$hardened" "$hardened/prefix"
chown 65534:65534 "$hardened/work"
"$node" "$source_dir/tests/e2e/clients/installed_server.mjs" hardened "$hardened/prefix" \
  "$hardened/work"

step "process-mcp-dev alone builds the template, and the unpacked server runs it"
# The SDK as the package ships it (headers, CMake package, template), unpacked under a prefix.
dev=$work/dev
mkdir -p "$dev/prefix"
dpkg-deb -x "$work"/packages/process-mcp-dev_*.deb "$dev/prefix"
cmake -S "$dev/prefix/usr/share/process-mcp/plugin-template" -B "$dev/build" \
  -DCMAKE_PREFIX_PATH="$dev/prefix/usr" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
  -DCMAKE_BUILD_TYPE=Release >"$dev/configure.log" 2>&1 ||
  { cat "$dev/configure.log" >&2; fail "the template does not configure against process-mcp-dev"; }
cmake --build "$dev/build" >"$dev/build.log" 2>&1 ||
  { cat "$dev/build.log" >&2; fail "the template does not build against process-mcp-dev"; }
python3 "$source_dir/tests/abi/spawn_through_plugin.py" "$hardened/prefix/usr/bin/process-mcp" \
  "$dev/build" example | sed 's/^/   /'

step "remove process-mcp-plugin-host: the core says what is missing"
in_root dpkg -r process-mcp-plugin-host >/dev/null
set +e
missing=$(in_root sh -c 'cd /root && process-mcp </dev/null' 2>&1)
code=$?
set -e
printf '%s\n' "$missing" | sed 's/^/   /'
[[ $code -ne 0 ]] || fail "the server started without its executor plugin"
[[ $missing == *"plugin 'host' not found"* && $missing == *"process-mcp-plugin-host"* ]] ||
  fail "the error does not name the missing plugin and its package"
in_root process-mcp --list-plugins | grep -q '^host ' && fail "--list-plugins still shows host"

step "the core cannot be removed from under its plugins"
set +e
refused=$(in_root dpkg -r process-mcp 2>&1)
code=$?
set -e
[[ $code -ne 0 && $refused == *"$abi"* ]] ||
  fail "dpkg -r process-mcp was not refused for the plugins that need $abi: $refused"
printf '   %s\n' "$(printf '%s\n' "$refused" | grep -m1 "$abi")"

step "ok"
