#!/usr/bin/env bash
# Builds process-mcp and passes the whole test suite: unit, ABI, integration, end-to-end
# tests (official MCP client), the Debian packages (built, linted, installed into a clean
# root) and the terminal under valgrind (libvterm is not instrumented) on the release build; then unit, integration, HTTP and end-to-end tests again under
# AddressSanitizer + UndefinedBehaviorSanitizer (LeakSanitizer at every server's exit) and under
# ThreadSanitizer; then each fuzz harness for about a minute. This is the command CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-debian.sh

echo "== installing the official MCP client for the end-to-end tests"
npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error

echo "== installing the official MCP conformance suite (and the Node 22 it runs on)"
npm ci --prefix tests/conformance --no-audit --no-fund --loglevel=error

echo "== Docker engine and test image for the docker executor tests"
bash scripts/docker-test-env.sh

echo "== clean Debian root for the package test (debootstrap, cached)"
bash scripts/package-test-root.sh

echo "== release build and full suite"
cmake --preset release
cmake --build --preset release
ctest --preset release

echo "== asan build (ASan + UBSan, LeakSanitizer at exit): unit, integration, HTTP and end-to-end tests"
cmake --preset asan
cmake --build --preset asan
ctest --preset asan

echo "== tsan build (ThreadSanitizer): unit, integration, HTTP and end-to-end tests"
cmake --preset tsan
cmake --build --preset tsan
ctest --preset tsan

echo "== fuzz build (clang, libFuzzer + ASan + UBSan): every harness for about a minute from its corpus"
cmake --preset fuzz
cmake --build --preset fuzz
ctest --preset fuzz
