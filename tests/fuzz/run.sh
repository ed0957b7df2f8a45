#!/usr/bin/env bash
# Runs one libFuzzer harness from its seed corpus, which it never writes to.
#
#   run.sh HARNESS SEED_DIR --ci          the CI run: seed 1, PMCP_FUZZ_RUNS inputs (ctest sets
#                                         it per harness) or else PMCP_FUZZ_SECONDS (default
#                                         60); a crash prints the input and fails
#   run.sh HARNESS SEED_DIR [SECONDS] [-- libFuzzer options...]
#                                         as long as you like (default 60 s); the inputs found
#                                         are kept in $PMCP_FUZZ_WORK (default: a temporary
#                                         folder, removed), crashes in the current folder
#                                         (crash-<sha1>: add it to SEED_DIR once fixed)
set -euo pipefail
harness=$1
seeds=$2
shift 2
mode=timed
seconds=60
if [[ ${1:-} == --ci ]]; then
  mode=ci
  shift
elif [[ ${1:-} =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
[[ ${1:-} == -- ]] && shift

work=${PMCP_FUZZ_WORK:-}
if [[ -z $work ]]; then
  work=$(mktemp -d "${TMPDIR:-/tmp}/pmcp-fuzz.XXXXXX")
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work/corpus" "$work/artifacts"
# Only the harness's own leaks matter; LeakSanitizer runs at exit.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
common=(-max_len=65536 -timeout=25 -rss_limit_mb=2048 -print_final_stats=1)
if [[ $mode == ci ]]; then
  limit=(-max_total_time="${PMCP_FUZZ_SECONDS:-60}")
  [[ -n ${PMCP_FUZZ_RUNS:-} ]] && limit=(-runs="$PMCP_FUZZ_RUNS")
  if ! "$harness" "${common[@]}" -artifact_prefix="$work/artifacts/" -seed=1 "${limit[@]}" "$@" \
      "$work/corpus" "$seeds"; then
    echo "FAIL: $(basename "$harness") crashed; the input:" >&2
    for f in "$work"/artifacts/*; do
      [[ -e $f ]] || continue
      echo "  $f" >&2
      od -c "$f" | head -20 >&2
      if [[ -n ${PMCP_FUZZ_CRASH_DIR:-} ]]; then
        mkdir -p "$PMCP_FUZZ_CRASH_DIR" && cp "$f" "$PMCP_FUZZ_CRASH_DIR/"
      fi
    done
    exit 1
  fi
else
  "$harness" "${common[@]}" -max_total_time="$seconds" "$@" "$work/corpus" "$seeds"
fi
