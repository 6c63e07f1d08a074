#!/usr/bin/env bash
# Runs every benchmark on an optimised build and writes bench/results/*.json. Figures are
# printed, never asserted: see bench/README.md for the latest numbers and how to read them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DTAPESTRY_TESTS=OFF >/dev/null
cmake --build build-bench -j "$(nproc)" --target tapestry benchmarks >/dev/null
mkdir -p bench/results
echo "== plan_scale"
build-bench/bench_plan_scale build-bench/tapestry bench/results/plan_scale.json
echo "== apply_scale"
build-bench/bench_apply_scale build-bench/tapestry bench/results/apply_scale.json
