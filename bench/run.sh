#!/usr/bin/env bash
# Runs every benchmark and reliability harness on an optimised build and writes
# bench/results/<name>.json (figures), bench/results/<name>.txt (what it printed) and
# bench/results/SUMMARY.md (the machine, the commit, and every figure table, for a human).
# Figures are printed, never asserted: see bench/README.md for the latest numbers, the
# targets and how to read them.
#
#   bash bench/run.sh                 everything (about an hour on 2 cores)
#   bash bench/run.sh NAME...         only these (names below)
#
# Names: plan_scale apply_scale scale commit_to_applied compare crash faults bad_input
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ALL=(plan_scale apply_scale scale commit_to_applied compare crash faults bad_input)
if [ $# -gt 0 ]; then SEL=("$@"); else SEL=("${ALL[@]}"); fi
for n in "${SEL[@]}"; do
	case " ${ALL[*]} " in *" $n "*) ;; *) echo "bench: unknown benchmark $n (one of: ${ALL[*]})" >&2; exit 64 ;; esac
done

bash scripts/install-deps.sh
# The fakes (tests/fakes) are test targets: the optimised build keeps the tests on to get them.
B=build-bench
cmake -S . -B "$B" -DCMAKE_BUILD_TYPE=Release -DTAPESTRY_TESTS=ON >/dev/null
cmake --build "$B" -j "$(nproc)" --target tapestry fake_snowflake fake_airbyte fake_proxy benchmarks >/dev/null
BIN="$ROOT/$B/tapestry"
R=bench/results
mkdir -p "$R" "$B/bench-work/scale" "$B/bench-work/commit_to_applied"

run_one() {
	local n="$1"
	case "$n" in
	plan_scale) "$B/bench_plan_scale" "$BIN" "$R/plan_scale.json" ;;
	apply_scale) "$B/bench_apply_scale" "$BIN" "$R/apply_scale.json" ;;
	scale) "$B/bench_scale" "$B" "$R/scale.json" --workdir "$ROOT/$B/bench-work/scale" ;;
	commit_to_applied) "$B/bench_commit_to_applied" "$B" "$R/commit_to_applied.json" \
		--workdir "$ROOT/$B/bench-work/commit_to_applied" ;;
	compare) bash bench/compare/run.sh "$BIN" "$R/compare.json" ;;
	crash) bash bench/reliability/crash.sh "$BIN" "$B" "$R/crash.json" ;;
	faults) bash bench/reliability/faults.sh "$BIN" "$B" "$R/faults.json" ;;
	bad_input) "$B/bench_bad_input" "$BIN" "$R/bad_input.json" 400 ;;
	esac
}

FAILED=()
for n in "${SEL[@]}"; do
	echo "== $n"
	if ! run_one "$n" 2>&1 | tee "$R/$n.txt"; then
		FAILED+=("$n")
		echo "bench: $n failed (its output: $R/$n.txt)" >&2
	fi
done

{
	echo "# Benchmark results"
	echo
	echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
	echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
	echo "- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n "s/^PRETTY_NAME=//p" /etc/os-release | tr -d "\""), $(gcc -dumpfullversion 2>/dev/null | sed 's/^/gcc /'), kernel $(uname -r)"
	[ ${#FAILED[@]} -eq 0 ] || echo "- failed: ${FAILED[*]}"
	for n in "${SEL[@]}"; do
		echo
		echo "## $n"
		echo
		echo '```'
		cat "$R/$n.txt"
		echo '```'
	done
} >"$R/SUMMARY.md"
echo "bench: results in $R/*.json, summary in $R/SUMMARY.md"
[ ${#FAILED[@]} -eq 0 ]
