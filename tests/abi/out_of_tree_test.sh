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
config=$work/process-mcp.toml
cat >"$config" <<TOML
executor = "example"
transports = ["stdio"]
plugin_dirs = ["$(dirname "$plugin")"]
TOML

python3 - "$server" "$config" <<'PY'
"""Drives the server over newline-delimited JSON-RPC on stdio and checks the spawn reply."""
import json
import queue
import re
import subprocess
import sys
import threading

server, config = sys.argv[1], sys.argv[2]
proc = subprocess.Popen([server, "--config", config], stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
lines = queue.Queue()
stderr_lines = []


def pump_stdout():
    for line in proc.stdout:
        lines.put(line)
    lines.put(None)


threading.Thread(target=pump_stdout, daemon=True).start()
threading.Thread(target=lambda: stderr_lines.extend(proc.stderr), daemon=True).start()


def fail(why):
    proc.kill()
    proc.wait()
    sys.stderr.write("FAIL: %s\n--- server stderr ---\n%s" % (why, "".join(stderr_lines)))
    sys.exit(1)


def send(message):
    try:
        proc.stdin.write(json.dumps(message) + "\n")
        proc.stdin.flush()
    except BrokenPipeError:
        fail("the server closed its stdin (exit code %s)" % proc.wait())


def reply_to(request_id, timeout=30):
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            fail("no reply to request %d within %d s" % (request_id, timeout))
        if line is None:
            fail("the server closed stdout before replying to %d" % request_id)
        try:
            message = json.loads(line)
        except ValueError:
            fail("stdout is not JSON-RPC: %r" % line)
        if isinstance(message, dict) and message.get("id") == request_id:
            return message


send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
      "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                 "clientInfo": {"name": "out-of-tree-test", "version": "1"}}})
init = reply_to(1)
if "result" not in init:
    fail("initialize failed: %s" % json.dumps(init))
send({"jsonrpc": "2.0", "method": "notifications/initialized"})
send({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
      "params": {"name": "spawn", "arguments": {"command": "hello"}}})
reply = reply_to(2)
result = reply.get("result")
if not isinstance(result, dict):
    fail("tools/call spawn failed: %s" % json.dumps(reply))
texts = [c.get("text", "") for c in result.get("content", []) if isinstance(c, dict)]
seen = "\n".join(texts) + "\n" + json.dumps(result.get("structuredContent"),
                                             separators=(",", ":"))
if result.get("isError"):
    fail("spawn reported an error: %s" % seen)
if "/bin/sh -c hello" not in seen:
    fail("the reply lacks the example's output '/bin/sh -c hello': %s" % seen)
if not re.search(r'"status"\s*:\s*"terminated"', seen):
    fail('the reply lacks "status":"terminated": %s' % seen)
print("spawn reply: %s" % seen.strip())

proc.stdin.close()
try:
    code = proc.wait(timeout=15)
except subprocess.TimeoutExpired:
    fail("the server did not exit within 15 s after its stdin closed")
if code != 0:
    fail("the server exited with %d after its stdin closed" % code)
PY
step "ok"
