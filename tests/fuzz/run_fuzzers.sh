#!/usr/bin/env bash
# Run every fuzz target for a bounded time, one after the other: bash tests/fuzz/run_fuzzers.sh [SECONDS] [BUILD_DIR]
# (defaults: 60 s each, build-fuzz). Each starts from the committed seeds plus what earlier runs
# found (kept in BUILD_DIR/fuzz-corpus/, not committed) and stops at the first finding, leaving the
# crashing input as BUILD_DIR/fuzz-artifacts/crash-* (or leak-*, timeout-*, oom-*); the script then
# exits non-zero. ASan and UBSan report their findings as crashes (the fuzz preset builds with both).
set -euo pipefail
seconds=${1:-60}
build=${2:-build-fuzz}
root="$(cd "$(dirname "$0")/../.." && pwd)"
mkdir -p "$build/fuzz-artifacts"
for target in fuzz_json fuzz_safetensors fuzz_checkpoint fuzz_tokenizer; do
  corpus=${target#fuzz_}
  work="$build/fuzz-corpus/$corpus"
  mkdir -p "$work"
  echo "=== $target: ${seconds} s"
  dict=()
  [[ $corpus == safetensors || $corpus == checkpoint ]] && dict=(-dict="$root/tests/fuzz/safetensors.dict")
  log="$build/fuzz-artifacts/../fuzz-$corpus.log"
  status=0
  ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1} \
  UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    "$build/tests/fuzz/$target" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=30 -print_final_stats=1 \
      -artifact_prefix="$build/fuzz-artifacts/" "${dict[@]}" "$work" "$root/tests/fuzz/corpus/$corpus" >"$log" 2>&1 || status=$?
  grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb)" "$log" || true
  if ((status != 0)); then
    tail -n 40 "$log" >&2
    echo "run_fuzzers: $target failed (exit status $status; log: $log)" >&2
    exit 1
  fi
  if ls "$build/fuzz-artifacts/" | grep -q .; then
    echo "run_fuzzers: $target found a problem: $(ls "$build/fuzz-artifacts/")" >&2
    exit 1
  fi
done
echo "run_fuzzers: no findings"
