#!/usr/bin/env bash
# Proves that a third party can write a plugin: installs the SDK of this build tree, builds
# examples/plugin-template against it, checks its exports and runs it in the server over stdio.
#
# usage: out_of_tree_test.sh <source dir> <build dir> <process-mcp binary>
# env:   CMAKE_COMMAND, PMCP_CMAKE_GENERATOR, CC, CXX (set by ctest; optional)
set -euo pipefail

if [[ $# -ne 3 ]]; then
  echo "usage: $0 <source dir> <build dir> <process-mcp binary>" >&2
  exit 2
fi
source_dir=$1
build_dir=$2
server=$3
cmake=${CMAKE_COMMAND:-cmake}

work=$(mktemp -d "${TMPDIR:-/tmp}/pmcp-out-of-tree.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

step() { printf '== %s\n' "$*"; }
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  exit 1
}

step "install the SDK (component dev) of $build_dir into a temporary prefix"
"$cmake" --install "$build_dir" --prefix "$prefix" --component dev

step "configure and build examples/plugin-template against the installed SDK"
generator_args=()
if [[ -n ${PMCP_CMAKE_GENERATOR:-} ]]; then generator_args=(-G "$PMCP_CMAKE_GENERATOR"); fi
"$cmake" -S "$source_dir/examples/plugin-template" -B "$work/build" "${generator_args[@]}" \
  -DCMAKE_BUILD_TYPE=Debug -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_CXX_FLAGS=-Werror \
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
sdk_dir=$(sed -n 's/^process-mcp-sdk_DIR:PATH=//p' "$work/build/CMakeCache.txt")
[[ $sdk_dir == "$prefix"/* ]] ||
  fail "find_package(process-mcp-sdk) found '$sdk_dir', not the SDK installed in $prefix"
"$cmake" --build "$work/build"
plugin=$work/build/pmcp-example.so
[[ -f $plugin ]] || fail "the build did not produce $plugin"

step "check that pmcp-example.so exports only pmcp_plugin_entry"
exports=$(nm -D --defined-only "$plugin" | awk '{print $NF}' | sort -u | tr '\n' ' ')
[[ $exports == "pmcp_plugin_entry " ]] ||
  fail "pmcp-example.so must export only pmcp_plugin_entry; it exports: $exports"

step "run the server with executor \"example\" and call spawn over stdio"
[[ -x $server ]] || fail "no server binary at $server"
python3 "$(dirname "$0")/spawn_through_plugin.py" "$server" "$(dirname "$plugin")" example
step "--check-config: the plugin checks its own table, without starting"
config=$work/check.toml
printf 'executor = "example"\ntransports = ["stdio"]\nplugin_dirs = ["%s"]\n\n[example]\nbogus = 1\n' \
  "$(dirname "$plugin")" >"$config"
set +e
out=$("$server" --config "$config" --check-config 2>&1 >/dev/null)
code=$?
set -e
echo "$out"
[[ $code -eq 2 && $out == *"$config:5: [example]"* && $out == *"unknown key 'bogus'"* ]] ||
  fail "--check-config with [example] bogus = 1: exit $code, '$out'"
sed -i '/^\[example\]$/,$d' "$config"
"$server" --config "$config" --check-config >/dev/null || fail "--check-config of a good config failed"
step "ok"
