#!/usr/bin/env bash
# The test command (README, CI): installs the build dependencies, builds Tapestry with
# AddressSanitizer and UndefinedBehaviorSanitizer, and runs every test suite through ctest.
# Any test failure or sanitizer report fails the run. Set JOBS to change build parallelism.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
# test-only tools outside Debian's C toolchain: Chromium and playwright-core (npm) for the
# dashboard's end-to-end test
bash tests/dashboard/install.sh
# the real Grouparoo 0.9 (npm) the Grouparoo reconciler is tested against, cached by lock file;
# its sqlite3 module builds from source (Node headers, a C++ compiler)
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends nodejs npm libnode-dev python3 g++ make
fi
bash tests/grouparoo/run-grouparoo.sh install >/dev/null

build=build-asan
jobs=${JOBS:-$(nproc)}
cmake -S . -B "$build" -G "Unix Makefiles" -DCMAKE_BUILD_TYPE=Debug -DTAPESTRY_SANITIZE=ON \
  -DCMAKE_C_COMPILER="${CC:-gcc}" >/dev/null
cmake --build "$build" -j "$jobs"

# Sanitizer reports abort the process (a failing test), leaks included.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"

ctest --test-dir "$build" --output-on-failure -j "$jobs"

# Fuzz targets: a short smoke run of each when clang is present (longer runs: bench/README.md).
if command -v clang >/dev/null 2>&1; then
  bash scripts/fuzz.sh smoke
fi
