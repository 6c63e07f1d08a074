#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/fuzz_*.c) with clang and runs each on its seed
# corpus (tests/fuzz/corpus/<name>/) and dictionary (tests/fuzz/dict/<name>.dict, when there
# is one). The targets: the spec loader (spec), webhook verification (webhook), the shared
# HTTP client's replies and error classification (http_client), and the API response parsing
# of every provider — aws_xml (the Query protocol's XML and AWS error documents, no network),
# aws, snowflake, airbyte, grouparoo (replies of a scripted server on 127.0.0.1 through each
# provider's real client into its observe/adopt slots, see tests/fuzz/scripted_http.h).
#
#   scripts/fuzz.sh smoke          each target for FUZZ_SECONDS (default 10): what CI runs,
#                                  about a minute and a half for the eight targets
#   scripts/fuzz.sh long [SECS]    each target for SECS (default 600, so about 80 minutes);
#                                  the longer run before a release or after touching a parser
#   scripts/fuzz.sh long 600 aws   only the named targets
#
# BUILD_DIR (default build-fuzz) is the clang build directory; the corpus each run grows is
# kept there (BUILD_DIR/corpus-<name>) and reused by the next run, findings are written there
# too (BUILD_DIR/crash-*, leak-*, timeout-*, oom-*). A finding is a bug: fix it, add a
# regression test to the suite of the code at fault, and add the input (minimised with
# `BUILD_DIR/fuzz_<name> -minimize_crash=1 -runs=10000 FILE`) to tests/fuzz/corpus/<name>/
# as regress-<what>. New seeds worth keeping can be merged from a long run with
# `BUILD_DIR/fuzz_<name> -merge=1 tests/fuzz/corpus/<name> BUILD_DIR/corpus-<name>`.
# Figures of the last long run: bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-smoke}
case "$mode" in
  smoke) secs=${FUZZ_SECONDS:-10} ;;
  long) secs=${2:-600} ;;
  *) echo "usage: scripts/fuzz.sh smoke|long [SECONDS [TARGET...]]" >&2; exit 64 ;;
esac
only=("${@:3}")
command -v clang >/dev/null || { echo "fuzz.sh: clang is required (apt-get install clang)" >&2; exit 1; }

build=${BUILD_DIR:-build-fuzz}
generator=()
[ -f "$build/CMakeCache.txt" ] || generator=(-G "Unix Makefiles")
cmake -S . -B "$build" "${generator[@]}" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
  -DTAPESTRY_FUZZ=ON -DTAPESTRY_TESTS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" >/dev/null

export ASAN_OPTIONS="detect_leaks=1"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
# the API targets talk to their own server on 127.0.0.1: never through a proxy
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY=127.0.0.1
for target in "$build"/fuzz_*; do
  [ -f "$target" ] && [ -x "$target" ] || continue
  name=$(basename "$target"); name=${name#fuzz_}
  if [ ${#only[@]} -gt 0 ] && [[ " ${only[*]} " != *" $name "* ]]; then
    continue
  fi
  seeds=tests/fuzz/corpus/$name
  work="$build/corpus-$name"
  dict=()
  [ -f "tests/fuzz/dict/$name.dict" ] && dict=(-dict="tests/fuzz/dict/$name.dict")
  mkdir -p "$work"
  echo "fuzz: $name for ${secs}s"
  # -rss_limit_mb bounds memory: an unbounded allocation (an alias bomb) is a finding
  "$target" -max_total_time="$secs" -rss_limit_mb=512 -timeout=10 -print_final_stats=1 \
    "${dict[@]}" -artifact_prefix="$build/" "$work" "$seeds" 2>&1 | tail -n 12
done
