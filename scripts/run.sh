#!/usr/bin/env bash
# Builds process-mcp (release preset) and runs it with the default config: host executor,
# stdio transport. Extra arguments go to the server (e.g. --config FILE, --check-config).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-debian.sh >&2
cmake --preset release >&2
cmake --build --preset release >&2
exec ./build/release/bin/process-mcp "$@"
