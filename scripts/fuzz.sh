#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs them on their seed corpora.
#   scripts/fuzz.sh smoke        each target for FUZZ_SECONDS (default 20) — what CI runs
#   scripts/fuzz.sh long [SECS]  each target for SECS (default 600), corpus kept in build-fuzz
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-smoke}
case "$mode" in
  smoke) secs=${FUZZ_SECONDS:-20} ;;
  long) secs=${2:-600} ;;
  *) echo "usage: scripts/fuzz.sh smoke|long [SECONDS]" >&2; exit 64 ;;
esac
command -v clang >/dev/null || { echo "fuzz.sh: clang is required (apt-get install clang)" >&2; exit 1; }

build=build-fuzz
cmake -S . -B "$build" -G "Unix Makefiles" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
  -DTAPESTRY_FUZZ=ON -DTAPESTRY_TESTS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" >/dev/null

export ASAN_OPTIONS="detect_leaks=1"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
for target in "$build"/fuzz_*; do
  [ -x "$target" ] || continue
  name=$(basename "$target"); name=${name#fuzz_}
  seeds=tests/fuzz/corpus/$name
  work="$build/corpus-$name"
  mkdir -p "$work"
  echo "fuzz: $name for ${secs}s"
  # -rss_limit_mb bounds memory: an unbounded allocation (an alias bomb) is a finding
  "$target" -max_total_time="$secs" -rss_limit_mb=512 -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$build/" "$work" "$seeds" 2>&1 | tail -n 12
done
