#!/usr/bin/env bash
# Fault tolerance of Tapestry's API clients and apply engine, against the embedded stack
# (scripts/demo/stack.sh) with faults injected into every backend: the Snowflake and Airbyte
# fakes draw them themselves (--fail-rate), and fake_proxy instances in front of moto_server
# and Grouparoo draw them for AWS and Grouparoo. A fault is a 5xx, a 429 with Retry-After, or
# a connection reset, always before the request is handled (nothing changes).
#
#   faults.sh TAPESTRY BUILD_DIR [OUT.json] [--rates 0.1,0.3] [--repeats N] [--seed S]
#             [--retry-after S] [--max-runs R] [--out FILE] [--smoke]
#
# For the fault-free baseline and each rate (N times, seeds S+1..S+N; default 3), on fresh
# backends: a cold apply of the kickstart pipeline (A), a no-op apply of the same commit, and
# a change (A -> B, variant.py: deletes and updates on every provider). Each phase is a
# sequence of `tapestry apply` runs, the way a controller's next reconciles follow a failed
# one, until one exits 0 and the check passes, for at most R runs (default 5). The phase
# converges when that happens: the live backends hold no duplicate, no orphan, nothing
# missing, no unsettled state row, and `tapestry plan --refresh` shows no change (drift only
# where moto always differs).
#
# Measured per rate, phase and backend: the runs needed, the HTTP calls that reached the
# backend (from its log, only while an apply ran) against the fault-free phase's, the
# engine's retries (runs table), and Retry-After: every answer 429 with Retry-After: S is
# followed, in the same run, by identical requests (AWS and Grouparoo: method, path, query
# and body hash in the proxy's log; Snowflake: method, path and body hash, so the engine's
# retry with a new requestId counts too; Airbyte: method, path, query and body), and one of
# them must come S seconds later or more — not all sooner (an identical request sooner can
# be another worker's, made meanwhile; the retry itself waits).
#
# Prints a summary and writes OUT.json (or --out FILE; default bench/results/faults.json).
# --smoke: rate 0.3 with one seed, for CI. Exit status 0 when every phase converged, every
# retry of a 429 waited and the calls stayed within 5 times the fault-free phase's.
set -euo pipefail
RL_NAME=faults
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
	exit 64
}
[ $# -ge 2 ] || usage
BIN="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
BUILD="$(cd "$2" && pwd)"
shift 2
POS_OUT=""
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then # a third positional argument: the results file
	POS_OUT="$1"
	shift
fi
RATES="0.1,0.3" REPEATS=3 SEED=20261122 RA=2 MAX_RUNS=5 OUT="$RL_ROOT/bench/results/faults.json" SMOKE=0
while [ $# -gt 0 ]; do
	case "$1" in
	--rates) RATES="$2"; shift 2 ;;
	--seed) SEED="$2"; shift 2 ;;
	--repeats) REPEATS="$2"; shift 2 ;;
	--retry-after) RA="$2"; shift 2 ;;
	--max-runs) MAX_RUNS="$2"; shift 2 ;;
	--out) OUT="$2"; shift 2 ;;
	--smoke) RATES="0.3" REPEATS=1 SMOKE=1; shift ;;
	*) usage ;;
	esac
done
[ -z "$POS_OUT" ] || OUT="$POS_OUT"
[ -x "$BIN" ] || rl_die "$BIN is not executable"
rl_need jq curl sqlite3 git python3 setsid timeout moto_server node
for f in fake_snowflake fake_airbyte fake_proxy; do
	[ -x "$BUILD/$f" ] || rl_die "$BUILD/$f is missing (cmake --build $BUILD --target $f)"
done
export RL_PLAN_ATTEMPTS=8

W="$(mktemp -d "${TMPDIR:-/tmp}/tapestry-faults.XXXXXX")"
finish() {
	local rc=$?
	trap - EXIT INT TERM
	rl_cleanup
	if [ "$rc" -ne 0 ] && [ -d "$W" ]; then
		local keepdir="${TMPDIR:-/tmp}/tapestry-faults-last-failure"
		rm -rf "$keepdir"
		mkdir -p "$keepdir"
		find "$W" -maxdepth 2 \( -name '*.log' -o -name '*.jsonl' -o -name '*.json' \) -exec cp {} "$keepdir"/ \; 2>/dev/null || true
		rl_say "logs kept in $keepdir"
	fi
	rm -rf "$W"
	exit "$rc"
}
trap finish EXIT
trap 'rl_say "interrupted"; exit 130' INT TERM
now_ms() { date +%s%3N; }

# The fault mix at a total rate: 40% server errors (503 and 500), 30% throttling, 30% resets.
fault_spec() {
	jq -rn --argjson p "$1" '"503:\($p * 0.25),500:\($p * 0.15),429:\($p * 0.3),reset:\($p * 0.3)"'
}

# lines FILE: how many lines it has now (0 when absent).
lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }

# ---------------------------------------------------------------- one rate
# run_rate RATE SEED: brings up the stack with that rate of faults drawn from that seed, runs
# the three phases and writes $W/rate-RATE-SEED.json.
run_rate() {
	local rate="$1" seed="$2" spec="" sd phase rev n ok t0 ms rc verdict runs_json
	local -A LOGS=()
	sd="$W/r$rate-$seed"
	if [ "$rate" != 0 ]; then
		spec=$(fault_spec "$rate")
		export STACK_SNOWFLAKE_ARGS="--fail-rate $spec --retry-after $RA --seed $seed"
		export STACK_AIRBYTE_ARGS="--fail-rate $spec --retry-after $RA --seed $seed"
	else
		export STACK_SNOWFLAKE_ARGS="" STACK_AIRBYTE_ARGS=""
	fi
	rl_say "rate $rate${spec:+ ($spec), seed $seed}: starting the backends"
	rl_stack_up "$sd" "$BUILD"
	sd="$RL_STACK_DIR"
	mkdir -p "$sd/state"
	local proxy_args=(--retry-after "$RA" --seed "$seed")
	[ -n "$spec" ] && proxy_args+=(--fail-rate "$spec")
	rl_proxy "$BUILD" "http://127.0.0.1:$AWS_PORT" "$sd/proxy-aws.log" "${proxy_args[@]}"
	export TAPESTRY_ENDPOINT_AWS="$RL_PROXY_URL"
	rl_proxy "$BUILD" "http://127.0.0.1:$GR_PORT" "$sd/proxy-grouparoo.log" "${proxy_args[@]}"
	export TAPESTRY_ENDPOINT_GROUPAROO="$RL_PROXY_URL"
	LOGS=([aws]="$sd/proxy-aws.log" [snowflake]="$sd/snowflake-requests.log"
		[airbyte]="$sd/airbyte-requests.log" [grouparoo]="$sd/proxy-grouparoo.log")
	: >"$sd/slices.jsonl"

	local repo="$STACK_REPO" db="$sd/state/state.db" rev_a rev_b
	git -C "$repo" branch -q pipeline-a
	python3 "$RL_HERE/variant.py" "$repo"
	git -C "$repo" add -A
	git -C "$repo" -c user.name=Harness -c user.email=harness@rainshield.example commit -qm \
		"Reliability variant: the syncing side (but the model), Zoom ingestion and two grants out; stacks, a parameter, a warehouse and a schedule changed; a probe stack and parameter in"
	rev_a=$(git -C "$repo" rev-parse pipeline-a)
	rev_b=$(git -C "$repo" rev-parse HEAD)

	: >"$sd/phases.jsonl"
	for phase in cold noop change; do
		rev=$rev_a
		[ "$phase" = change ] && rev=$rev_b
		runs_json='[]'
		ok=0
		for n in $(seq 1 "$MAX_RUNS"); do
			local -A before=()
			local b
			for b in aws snowflake airbyte grouparoo; do before[$b]=$(lines "${LOGS[$b]}"); done
			local runs_before
			runs_before=$(sqlite3 -readonly "$db" 'SELECT coalesce(max(id), 0) FROM runs' 2>/dev/null || echo 0)
			t0=$(now_ms)
			rc=0
			timeout -s KILL 900 "$BIN" apply --repo "$repo" --rev "$rev" --path . --state "$db" \
				--auto-approve >"$sd/$phase-$n.log" 2>&1 </dev/null || rc=$?
			ms=$(($(now_ms) - t0))
			local calls='{}'
			for b in aws snowflake airbyte grouparoo; do
				local after
				after=$(lines "${LOGS[$b]}")
				calls=$(jq -c --arg b "$b" --argjson n $((after - before[$b])) '.[$b] = $n' <<<"$calls")
				jq -nc --arg b "$b" --arg phase "$phase" --argjson run "$n" --argjson from "${before[$b]}" \
					--argjson to "$after" '{backend: $b, phase: $phase, run: $run, from: $from, to: $to}' >>"$sd/slices.jsonl"
			done
			local engine
			engine=$(sqlite3 -readonly -json "$db" "SELECT result, counts FROM runs WHERE id > $runs_before" 2>/dev/null |
				jq -c 'map({result, retries: (.counts | fromjson | .retries)}) | .[0] // null' 2>/dev/null || echo null)
			[ -n "$engine" ] || engine=null
			local why=""
			[ "$rc" = 0 ] || why=$(grep -v '^ ' "$sd/$phase-$n.log" | grep -E '^Error|: Error:' | head -n 2 | tr '\n' ' ' | cut -c1-300)
			verdict='null'
			if [ "$rc" = 0 ] || [ "$n" = "$MAX_RUNS" ]; then
				mkdir -p "$sd/check-$phase-$n"
				if rl_verdict "$BIN" "$db" "$sd/check-$phase-$n" --repo "$repo" --rev "$rev" --path .; then
					verdict=$RL_VERDICT
				else
					verdict='{"violations":[{"type":"check-failed","provider":"all","what":"the live inventory could not be read"}],"converged":false}'
				fi
				rm -rf "$sd/check-$phase-$n/inv" "$sd/check-$phase-$n/live.json"
			fi
			runs_json=$(jq -c --argjson n "$n" --argjson rc "$rc" --argjson ms "$ms" --argjson calls "$calls" \
				--argjson engine "$engine" --arg why "$why" --argjson v "$verdict" \
				'. + [{run: $n, exit: $rc, ms: $ms, calls: $calls, engine: $engine,
				       error: (if $why == "" then null else $why end),
				       converged: (if $v == null then null else ($v.converged and ($v.violations | length) == 0) end),
				       violations: (if $v == null then [] else $v.violations end),
				       known_moto_drift: (if $v == null then null else $v.plan.known_moto_drift end)}]' <<<"$runs_json")
			printf '%s: rate %-4s %-6s run %d: exit %d in %6d ms, engine retries %s%s\n' "$RL_NAME" "$rate" "$phase" "$n" "$rc" "$ms" \
				"$(jq -r '.retries // "-"' <<<"$engine")" \
				"$(jq -r 'if . == null then "" elif .converged and (.violations | length) == 0 then ", converged" else ", NOT converged: " + (.violations | map(.type + " " + .what) | join("; ") | .[0:300]) end' <<<"$verdict")" >&2
			[ "$rc" != 0 ] && [ -n "$why" ] && rl_say "  run $n: $why"
			if [ "$rc" = 0 ] && [ "$(jq -r '.converged and (.violations | length) == 0' <<<"$verdict")" = true ]; then
				ok=1
				break
			fi
		done
		jq -nc --arg phase "$phase" --argjson ok "$ok" --argjson runs "$runs_json" \
			'{phase: $phase, converged: ($ok == 1), runs_needed: (if $ok == 1 then ($runs | length) else null end), runs: $runs}' \
			>>"$sd/phases.jsonl"
	done

	# Retry-After: within the apply runs' slices of each log
	local b
	: >"$sd/retry-after.jsonl"
	for b in aws snowflake airbyte grouparoo; do
		local slice="$sd/slice-$b.jsonl"
		: >"$slice"
		# each line tagged with its run: a retry is paired within the process that made the
		# request, never with the next run's first request
		while read -r run from to; do
			[ "$to" -gt "$from" ] || continue
			sed -n "$((from + 1)),${to}p" "${LOGS[$b]}" | jq -c --arg r "$run" '. + {_run: $r}' >>"$slice"
		done < <(jq -r --arg b "$b" 'select(.backend == $b) | "\(.phase)-\(.run) \(.from) \(.to)"' "$sd/slices.jsonl")
		jq -s -c --arg b "$b" --argjson ra "$RA" '
			def key: [._run] + (if $b == "snowflake" then [.method, .path, .body_sha]
				 elif $b == "airbyte" then [.method, .path, .query, (.body | tostring)]
				 else [.method, .path, .query, .body_sha] end);
			def t: if $b == "aws" or $b == "grouparoo" then .t_ms else .ts end;
			(map(select(.fault != null and .fault != "")) | group_by(.fault) | map({(.[0].fault): length}) | add // {}) as $faults
			| [to_entries[] | .value + {i: .key}] | group_by(key)
			# the waits of every identical request that followed the 429 in that run: the
			# client that got it sent one of them; one sooner than Retry-After may be
			# another worker making the same request meanwhile (several creates list the
			# same collection), so the 429 counts as not waited for only when none of
			# them came Retry-After or more later
			| [.[] | . as $g | range(0; length) as $k | select($g[$k].status == 429)
			   | ($g[$k] | t) as $t0
			   | {waits: [$g[$k + 1:][] | t - $t0],
			      what: ($g[$k] | "\(.method) \(.path)\(if (.action // "") != "" then " " + .action else "" end)")}]
			| {backend: $b, faults: $faults, throttled: length,
			   retried: map(select(.waits | length > 0)) | length,
			   not_retried: map(select(.waits | length == 0)) | length,
			   min_wait_ms: (map(.waits | map(select(. >= $ra * 1000)) | min // empty) | min),
			   concurrent: map(select((.waits | length > 0) and .waits[0] < $ra * 1000
						  and any(.waits[]; . >= $ra * 1000))) | length,
			   early: [.[] | select((.waits | length > 0) and all(.waits[]; . < $ra * 1000))
				   | {what, waited_ms: .waits[0]}]}' "$slice" >>"$sd/retry-after.jsonl"
	done
	jq -n --argjson rate "$rate" --argjson seed "$seed" --arg spec "$spec" \
		--slurpfile phases "$sd/phases.jsonl" --slurpfile ra "$sd/retry-after.jsonl" \
		'{rate: $rate, seed: $seed, spec: (if $spec == "" then null else $spec end),
		  phases: $phases, retry_after: $ra}' >"$W/rate-$rate-$seed.json"
	unset TAPESTRY_ENDPOINT_AWS TAPESTRY_ENDPOINT_GROUPAROO
	rl_stop_pid "${RL_PIDS[-1]}"
	rl_stop_pid "${RL_PIDS[-2]}"
	RL_PIDS=()
	rl_stack_down "$sd"
}

T0=$(now_ms)
run_rate 0 "$SEED"
IFS=',' read -r -a rate_list <<<"$RATES"
for r in "${rate_list[@]}"; do
	for i in $(seq 1 "$REPEATS"); do run_rate "$r" $((SEED + i)); done
done
SECS=$((($(now_ms) - T0) / 1000))

# ---------------------------------------------------------------- the report
mkdir -p "$(dirname "$OUT")"
jq -s --argjson secs "$SECS" --argjson seed "$SEED" --argjson ra "$RA" --argjson max "$MAX_RUNS" \
	--argjson repeats "$REPEATS" --arg date "$(date -u +%Y-%m-%d)" \
	--arg machine "$(nproc) cores, $(uname -sr)" --argjson smoke "$SMOKE" '
	def sum_calls: reduce .[] as $r ({}; reduce ($r.calls | to_entries[]) as $e (.; .[$e.key] += $e.value));
	def ratio($a; $b): if ($b // 0) > 0 then (($a / $b * 100 | round) / 100) else null end;
	(.[] | select(.rate == 0)) as $base
	| ($base.phases | map({(.phase): (.runs | sum_calls)}) | add) as $base_calls
	# one entry per (rate, seed), its phases with calls and ratios to the fault-free phase
	| [.[] | {rate, seed, spec, retry_after,
		phases: [.phases[] | (.runs | sum_calls) as $c | . as $p | {phase, converged, runs_needed,
			runs_total: (.runs | length), first_run_exit: .runs[0].exit,
			seconds: ((.runs | map(.ms) | add) / 1000),
			engine_retries: (.runs | map(.engine.retries // 0) | add),
			calls: $c,
			calls_ratio: ($c | with_entries(.value = ratio(.value; $base_calls[$p.phase][.key]))),
			errors: [.runs[] | .error | select(. != null)],
			violations: [.runs[-1].violations[]?]}]}] as $runs
	| {benchmark: "faults", date: $date, machine: $machine, seed: $seed, repeats: $repeats,
	   retry_after_s: $ra, max_runs_per_phase: $max, engine_max_attempts: 5,
	   engine_retry_budget_per_provider: 50, duration_s: $secs, smoke: ($smoke == 1),
	   fault_free_calls: $base_calls,
	   rates: [$runs | group_by(.rate)[] | . as $g | {rate: $g[0].rate, spec: $g[0].spec,
		seeds: [$g[].seed],
		phases: [$g[0].phases[].phase as $ph | [$g[].phases[] | select(.phase == $ph)] as $ps
			| {phase: $ph,
			   converged: "\($ps | map(select(.converged)) | length)/\($ps | length)",
			   runs_needed: [$ps[].runs_needed],
			   seconds: [$ps[].seconds],
			   engine_retries: [$ps[].engine_retries],
			   calls_ratio_max: (reduce $ps[].calls_ratio as $r ({}; reduce ($r | to_entries[]) as $e (.;
				.[$e.key] = ([.[$e.key], $e.value] | map(select(. != null)) | max)))),
			   calls_ratio_mean: (reduce $ps[].calls_ratio as $r ({}; reduce ($r | to_entries[]) as $e (.;
				.[$e.key] += (($e.value // 0) / ($ps | length)))) | map_values((. * 100 | round) / 100)),
			   errors: [$ps[].errors[]], violations: [$ps[].violations[]]}],
		retry_after: [$g[0].retry_after[].backend as $b | [$g[].retry_after[] | select(.backend == $b)] as $rs
			| {backend: $b,
			   faults: (reduce $rs[].faults as $f ({}; reduce ($f | to_entries[]) as $e (.; .[$e.key] += $e.value))),
			   throttled: ([$rs[].throttled] | add), retried: ([$rs[].retried] | add),
			   not_retried: ([$rs[].not_retried] | add),
			   concurrent: ([$rs[].concurrent] | add),
			   min_wait_ms: ([$rs[].min_wait_ms | select(. != null)] | min),
			   early: [$rs[].early[]]}]}],
	   runs: $runs}
	| .summary = {
	    all_converged: ([.runs[].phases[].converged] | all),
	    retry_after_honoured: ([.rates[].retry_after[].early | length] | add == 0),
	    max_calls_ratio: ([.rates[] | select(.rate > 0) | .phases[].calls_ratio_max[] | select(. != null)] | max),
	    within_budget: ([.rates[] | select(.rate > 0) | .phases[].calls_ratio_max[] | select(. != null)] | all(. <= 5))}
	' "$W"/rate-*.json >"$OUT"

jq -r '
	"faults: baseline and \(.rates | map(select(.rate > 0)) | length) rate(s) x \(.repeats) seed(s), Retry-After \(.retry_after_s) s, \(.duration_s) s",
	(.rates[] | . as $r | .phases[] |
		"faults: rate \($r.rate) \(.phase): converged \(.converged), runs needed \(.runs_needed | map(tostring) | join(",")), "
		+ "\(.seconds | map(tostring) | join("/")) s, engine retries \(.engine_retries | map(tostring) | join(","))"
		+ (if $r.rate > 0 then ", calls x " + (.calls_ratio_mean | to_entries | map("\(.key) \(.value)") | join(" ")) + " of fault-free (max " + (.calls_ratio_max | to_entries | map("\(.key) \(.value)") | join(" ")) + ")" else "" end)),
	(.rates[] | . as $r | select(.rate > 0) | .retry_after[] |
		"faults: rate \($r.rate) \(.backend): injected " + (.faults | to_entries | map("\(.key) \(.value)") | join(" "))
		+ "; 429s \(.throttled), retried \(.retried) (shortest wait \(.min_wait_ms) ms; \(.concurrent) with an identical request of another worker in between), early \(.early | length), not retried \(.not_retried)"),
	"faults: all converged: \(.summary.all_converged); Retry-After honoured: \(.summary.retry_after_honoured); max calls ratio \(.summary.max_calls_ratio) (bound 5: \(.summary.within_budget))"' "$OUT"
rl_say "results in $OUT"
[ "$(jq '.summary.all_converged and .summary.retry_after_honoured and .summary.within_budget' "$OUT")" = true ]
