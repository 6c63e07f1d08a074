#!/usr/bin/env bash
# Crash reliability of the apply engine, against the embedded stack (scripts/demo/stack.sh:
# moto_server, the Snowflake and Airbyte fakes, the real Grouparoo 0.9).
#
#   crash.sh TAPESTRY BUILD_DIR [OUT.json] [--trials N] [--stacks K] [--seed S]
#            [--double-kill PCT] [--out FILE] [--smoke] [--keep-logs DIR]
#
# Each trial starts `tapestry apply --repo R --rev C` toward the other of two commits — the
# kickstart pipeline (A) and a variant (B, variant.py) that deletes, changes and creates
# objects on every provider (undone on the way back) — SIGKILLs it after a seeded random
# delay drawn over that direction's measured apply time, reads from the state database what
# was in flight, restarts the apply (in PCT% of the trials kills that restart too, then
# restarts again) and then checks the live backends through their own APIs: no duplicate, no
# orphan the state does not know, nothing the state records missing, no unsettled row, and
# convergence (`tapestry plan --refresh` shows no change; the drift moto always shows on
# List<Subnet::Id> stack parameters is counted apart). Trials are spread over K fresh stacks,
# so K of them kill a cold apply (everything created from nothing).
#
# Prints a summary and writes OUT.json (or --out FILE; default bench/results/crash.json).
# --smoke: 8 trials on one stack, for CI. Exit status 0 when no trial found a violation.
set -euo pipefail
RL_NAME=crash
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
TRIALS=200 STACKS=4 SEED=20261122 DOUBLE=15 OUT="$RL_ROOT/bench/results/crash.json" KEEP_LOGS=""
while [ $# -gt 0 ]; do
	case "$1" in
	--trials) TRIALS="$2"; shift 2 ;;
	--stacks) STACKS="$2"; shift 2 ;;
	--seed) SEED="$2"; shift 2 ;;
	--double-kill) DOUBLE="$2"; shift 2 ;;
	--out) OUT="$2"; shift 2 ;;
	--keep-logs) KEEP_LOGS="$2"; shift 2 ;;
	--smoke) TRIALS=8 STACKS=1; shift ;;
	*) usage ;;
	esac
done
[ -z "$POS_OUT" ] || OUT="$POS_OUT"
[ -x "$BIN" ] || rl_die "$BIN is not executable"
if [ "$STACKS" -lt 1 ] || [ "$TRIALS" -lt "$STACKS" ]; then rl_die "--trials must be at least --stacks (>= 1)"; fi
rl_need jq curl sqlite3 git python3 setsid timeout moto_server node
for f in fake_snowflake fake_airbyte; do [ -x "$BUILD/$f" ] || rl_die "$BUILD/$f is missing"; done

# The fakes answer in microseconds where a real API takes tens to hundreds of milliseconds:
# latency spreads the kill points over their writes as it would be on the real services.
export STACK_SNOWFLAKE_ARGS="${STACK_SNOWFLAKE_ARGS:---latency-ms 50}"
export STACK_AIRBYTE_ARGS="${STACK_AIRBYTE_ARGS:---latency-ms 100}"

W="$(mktemp -d "${TMPDIR:-/tmp}/tapestry-crash.XXXXXX")"
APPLY_PID=""
finish() {
	local rc=$?
	trap - EXIT INT TERM
	[ -n "$APPLY_PID" ] && rl_stop_pid "$APPLY_PID"
	rl_cleanup
	if [ "$rc" -ne 0 ] && [ -d "$W" ]; then
		local keepdir="${KEEP_LOGS:-${TMPDIR:-/tmp}/tapestry-crash-last-failure}"
		mkdir -p "$keepdir"
		cp "$W/trials.jsonl" "$W"/*.up.log "$keepdir"/ 2>/dev/null || true
		rl_say "trial records and failing trials' logs kept in $keepdir"
	fi
	rm -rf "$W"
	exit "$rc"
}
trap finish EXIT
trap 'rl_say "interrupted"; exit 130' INT TERM

# ---------------------------------------------------------------- seeded randomness
RNG=$((SEED * 2 + 1))
RAND=0
rand_below() { # N: RAND = a uniform integer in [0, N) from a 64-bit LCG (reproducible per
	# seed); no subshell, so that the generator's state carries from one draw to the next
	RNG=$(((RNG * 6364136223846793005 + 1442695040888963407) & 0x7fffffffffffffff))
	RAND=$(((RNG >> 31) % $1))
}
now_ms() { date +%s%3N; }

# ---------------------------------------------------------------- one apply
# apply_bg REV LOG: starts `tapestry apply` toward REV in its own process group.
apply_bg() {
	setsid "$BIN" apply --repo "$REPO" --rev "$1" --path . --state "$DB" --auto-approve \
		>"$2" 2>&1 </dev/null &
	APPLY_PID=$!
}
# apply_fg REV LOG: runs it to completion (bounded); sets APPLY_RC and APPLY_MS.
apply_fg() {
	local t0
	t0=$(now_ms)
	APPLY_RC=0
	timeout -s KILL 300 "$BIN" apply --repo "$REPO" --rev "$1" --path . --state "$DB" \
		--auto-approve >"$2" 2>&1 </dev/null || APPLY_RC=$?
	APPLY_MS=$(($(now_ms) - t0))
}

# What the killed process left behind, from the state database (read-only): the journal's
# pending writes, provisional "creating" rows, and whether its run had begun or ended.
# RUNS_BEFORE is the number of runs before the killed process started.
kill_point() {
	local killed="$1"
	sqlite3 -readonly -json "$DB" "
		SELECT
		  (SELECT count(*) FROM runs) AS runs,
		  (SELECT ended_ms IS NOT NULL FROM runs ORDER BY id DESC LIMIT 1) AS ended,
		  (SELECT json_group_array(address || ' ' || action) FROM journal WHERE status = 'pending') AS pending,
		  (SELECT json_group_array(address) FROM resources WHERE status = 'creating') AS creating" |
		jq -c --argjson before "$RUNS_BEFORE" --argjson killed "$killed" '.[0]
		| (.pending | fromjson) as $p | (.creating | fromjson) as $c
		| {pending: $p, creating: $c,
		   phase: (if $killed == 0 then "completed before the kill"
			   elif ($p | length) > 0 then "write in flight"
			   elif .runs <= $before then "before the run (recover, observe, plan)"
			   elif .ended == 1 then "after the run"
			   else "between writes" end)}'
}

# ---------------------------------------------------------------- the stacks
# new_stack: fresh backends and repository (commits A and B); the first one also calibrates.
NSTACK=0
new_stack() {
	NSTACK=$((NSTACK + 1))
	rl_say "stack $NSTACK: starting the backends"
	rl_stack_up "$W/stack$NSTACK" "$BUILD"
	SD="$RL_STACK_DIR"
	mkdir -p "$SD/state"
	REPO="$STACK_REPO"
	DB="$SD/state/state.db"
	git -C "$REPO" branch -q pipeline-a
	python3 "$RL_HERE/variant.py" "$REPO"
	git -C "$REPO" add -A
	git -C "$REPO" -c user.name=Harness -c user.email=harness@rainshield.example commit -qm \
		"Reliability variant: the syncing side (but the model), Zoom ingestion and two grants out; stacks, a parameter, a warehouse and a schedule changed; a probe stack and parameter in"
	REV_A=$(git -C "$REPO" rev-parse pipeline-a)
	REV_B=$(git -C "$REPO" rev-parse HEAD)
	dir=cold
	if [ "$NSTACK" = 1 ]; then
		# calibration: one uninterrupted apply per direction sets the kill windows
		for d in cold:"$REV_A" b:"$REV_B" a:"$REV_A"; do
			apply_fg "${d#*:}" "$SD/calibrate-${d%%:*}.log"
			if [ "$APPLY_RC" != 0 ]; then
				tail -n 30 "$SD/calibrate-${d%%:*}.log" >&2
				rl_die "calibration apply (${d%%:*}) failed"
			fi
			DUR[${d%%:*}]=$APPLY_MS
		done
		rl_say "calibration: cold apply ${DUR[cold]} ms, A->B ${DUR[b]} ms, B->A ${DUR[a]} ms"
		dir=a # the next trial goes to B
	fi
}

TOTAL_T0=$(now_ms)
: >"$W/trials.jsonl"
declare -A DUR=()
PER_STACK=$(((TRIALS + STACKS - 1) / STACKS))
on_stack=0
TAINTED=0
for trial in $(seq 1 "$TRIALS"); do
	if [ "$on_stack" = 0 ] || [ "$on_stack" -ge "$PER_STACK" ] || [ "$TAINTED" = 1 ]; then
		# a new stack: every PER_STACK trials (each begins with a cold apply), and after a
		# trial that found a violation, so that one fault does not run on into the next
		[ "$NSTACK" = 0 ] || rl_stack_down "$SD"
		new_stack
		on_stack=0
		TAINTED=0
	elif [ "$dir" = b ]; then
		dir=a
	else
		dir=b
	fi
	[ "$on_stack" = 0 ] && [ "$dir" = a ] && dir=b
	on_stack=$((on_stack + 1))
	rev=$REV_A
	[ "$dir" = b ] && rev=$REV_B
	TD="$SD/t$trial"
	mkdir -p "$TD"
	RUNS_BEFORE=$(sqlite3 -readonly "$DB" 'SELECT count(*) FROM runs' 2>/dev/null || echo 0)
	EV_BEFORE=$(sqlite3 -readonly "$DB" 'SELECT coalesce(max(id), 0) FROM events' 2>/dev/null || echo 0)
	window=$((DUR[$dir] * 11 / 10 + 1))
	rand_below "$window"
	delay=$RAND
	apply_bg "$rev" "$TD/killed.log"
	sleep "$(printf '%d.%03d' $((delay / 1000)) $((delay % 1000)))"
	killed=0
	if kill -0 "$APPLY_PID" 2>/dev/null; then
		kill -KILL -- "-$APPLY_PID" 2>/dev/null && killed=1
	fi
	wait "$APPLY_PID" 2>/dev/null || true
	APPLY_PID=""
	kp=$(kill_point "$killed")
	kp2='null'
	rand_below 100
	if [ "$killed" = 1 ] && [ "$RAND" -lt "$DOUBLE" ]; then
		# the restart is killed too: recovery itself interrupted
		RUNS_BEFORE=$(sqlite3 -readonly "$DB" 'SELECT count(*) FROM runs')
		rand_below "$window"
		delay2=$RAND
		apply_bg "$rev" "$TD/killed2.log"
		sleep "$(printf '%d.%03d' $((delay2 / 1000)) $((delay2 % 1000)))"
		k2=0
		if kill -0 "$APPLY_PID" 2>/dev/null; then kill -KILL -- "-$APPLY_PID" 2>/dev/null && k2=1; fi
		wait "$APPLY_PID" 2>/dev/null || true
		APPLY_PID=""
		kp2=$(kill_point "$k2" | jq -c --argjson d "$delay2" '. + {delay_ms: $d}')
	fi
	apply_fg "$rev" "$TD/restart.log"
	recovered=$(sqlite3 -readonly -json "$DB" "SELECT address, message FROM events WHERE id > $EV_BEFORE AND type = 'recovered'" | jq -c '. // []')
	[ -n "$recovered" ] || recovered='[]'
	if ! rl_verdict "$BIN" "$DB" "$TD" --repo "$REPO" --rev "$rev" --path .; then
		RL_VERDICT='{"violations":[{"type":"check-failed","provider":"all","what":"the live inventory could not be read"}],"converged":false,"plan":{}}'
	fi
	if [ "$APPLY_RC" != 0 ]; then
		RL_VERDICT=$(jq -c --arg t "$(grep -v '^ ' "$TD/restart.log" | grep -E 'Error|error' | head -n 3 | tr '\n' ' ' | cut -c1-600)" \
			'.violations += [{type: "restart-failed", provider: "all", what: $t}]' <<<"$RL_VERDICT")
	fi
	jq -nc --argjson trial "$trial" --argjson stack "$NSTACK" --arg dir "$dir" --argjson delay "$delay" \
		--argjson window "$window" --argjson killed "$killed" --argjson kp "$kp" --argjson kp2 "$kp2" \
		--argjson rc "$APPLY_RC" --argjson ms "$APPLY_MS" --argjson rec "$recovered" --argjson v "$RL_VERDICT" \
		'{trial: $trial, stack: $stack, toward: (if $dir == "b" then "B" elif $dir == "a" then "A" else "A (cold)" end),
		  delay_ms: $delay, window_ms: $window, killed: ($killed == 1), kill_point: $kp, second_kill: $kp2,
		  restart: {exit: $rc, ms: $ms}, recovered: $rec,
		  violations: $v.violations, converged: $v.converged, plan: $v.plan}' >>"$W/trials.jsonl"
	line=$(tail -n 1 "$W/trials.jsonl")
	nv=$(jq '.violations | length' <<<"$line")
	printf '%s: trial %3d/%d stack %d -> %-8s kill at %4d ms: %-58s restart %5d ms  %s\n' "$RL_NAME" \
		"$trial" "$TRIALS" "$NSTACK" "$(jq -r .toward <<<"$line")" "$delay" \
		"$(jq -r '.kill_point.phase + (if (.kill_point.pending | length) > 0 then " (" + (.kill_point.pending | join(", ")) + ")" else "" end)' <<<"$line" | cut -c1-58)" \
		"$APPLY_MS" "$([ "$nv" = 0 ] && echo ok || echo "VIOLATIONS: $(jq -c .violations <<<"$line" | cut -c1-400)")" >&2
	if [ "$nv" != 0 ]; then
		TAINTED=1
		if [ -n "$KEEP_LOGS" ]; then
			mkdir -p "$KEEP_LOGS/t$trial"
			cp -r "$TD"/. "$KEEP_LOGS/t$trial"/ || true
			cp "$DB" "$KEEP_LOGS/t$trial/state.db" || true
			cp "$SD"/*.log "$KEEP_LOGS/t$trial"/ 2>/dev/null || true
		fi
	fi
	rm -rf "$TD/live.json" "$TD/inv"
done
rl_stack_down "$SD"
TOTAL_S=$((($(now_ms) - TOTAL_T0) / 1000))

# ---------------------------------------------------------------- the report
mkdir -p "$(dirname "$OUT")"
jq -s --argjson seed "$SEED" --argjson stacks "$NSTACK" --argjson double "$DOUBLE" \
	--argjson secs "$TOTAL_S" --arg date "$(date -u +%Y-%m-%d)" --arg machine "$(nproc) cores, $(uname -sr)" \
	--arg sfargs "$STACK_SNOWFLAKE_ARGS" --arg abargs "$STACK_AIRBYTE_ARGS" \
	--argjson dur "$(for k in cold b a; do echo "{\"$k\": ${DUR[$k]}}"; done | jq -s add)" '
	def prov: split(".")[0];
	def pct(p): sort | .[((length - 1) * p | floor)] // null;
	. as $t
	| ["aws", "snowflake", "airbyte", "grouparoo"] as $providers
	| {benchmark: "crash", date: $date, machine: $machine, seed: $seed, stacks: $stacks,
	   trials: ($t | length), double_kill_percent: $double, duration_s: $secs,
	   fake_args: {snowflake: $sfargs, airbyte: $abargs},
	   calibration_ms: {cold_apply: $dur.cold, a_to_b: $dur.b, b_to_a: $dur.a},
	   killed: ($t | map(select(.killed)) | length),
	   second_kills: ($t | map(select(.second_kill != null and .second_kill.phase != "completed before the kill")) | length),
	   toward: ($t | group_by(.toward) | map({(.[0].toward): length}) | add),
	   phases: ($t | map(.kill_point.phase) + ($t | map(.second_kill | select(. != null) | .phase))
		    | group_by(.) | map({(.[0]): length}) | add),
	   restart_ms: {median: ($t | map(.restart.ms) | pct(0.5)), p95: ($t | map(.restart.ms) | pct(0.95)),
			max: ($t | map(.restart.ms) | max)},
	   providers: ($providers | map(. as $p | {($p): {
		trials: ($t | length),
		kills_with_write_in_flight: ($t | map(select([.kill_point.pending[], (.second_kill.pending // [])[]]
						| map(prov) | index($p))) | length),
		writes_in_flight: ([$t[] | .kill_point.pending[], (.second_kill.pending // [])[]
				    | select(prov == $p) | split(" ") | {kind: (.[0] | split("/")[0]), action: .[1]}]
				   | group_by(.kind + " " + .action) | map({(.[0].kind + " " + .[0].action): length}) | add // {}),
		provisional_rows_at_kill: ([$t[] | .kill_point.creating[], (.second_kill.creating // [])[] | select(prov == $p)] | length),
		recovered: ([$t[] | .recovered[] | select(.address | prov == $p) | .message
			     | if test("the object exists \\(") then "create found, finished by the create"
			       elif test("no object found yet") then "create not found, looked for again"
			       elif test("was adopted") then "create found, adopted"
			       elif test("no longer has it") then "create not found, forgotten"
			       elif test("object is gone") then "delete confirmed"
			       elif test("still exists") then "delete redone"
			       elif test("compares again") then "update re-planned"
			       elif test("provisional") then "create journal row closed"
			       elif test("cannot be checked") or test("cannot observe") then "left for the next run"
			       else . end] | group_by(.) | map({(.[0]): length}) | add // {}),
		violations: ([$t[] | .violations[] | select(.provider == $p)] | length)}}) | add),
	   known_moto_drift_per_check: ($t | map(.plan.known_moto_drift // 0) | max),
	   violations: [$t[] | .trial as $n | .violations[] | . + {trial: $n}],
	   converged: ($t | map(select(.converged)) | length)}' "$W/trials.jsonl" >"$OUT"

jq -r '
	"crash: \(.trials) trials on \(.stacks) stack(s), seed \(.seed), \(.duration_s) s; \(.killed) killed mid-apply (\(.second_kills) restarts killed too)",
	"crash: kill windows from calibration: cold \(.calibration_ms.cold_apply) ms, A->B \(.calibration_ms.a_to_b) ms, B->A \(.calibration_ms.b_to_a) ms",
	"crash: kill points: " + (.phases | to_entries | map("\(.key) \(.value)") | join(", ")),
	"crash: restart to completion: median \(.restart_ms.median) ms, p95 \(.restart_ms.p95) ms, max \(.restart_ms.max) ms",
	(.providers | to_entries[] | "crash: \(.key): \(.value.trials) trials, \(.value.kills_with_write_in_flight) kills with its write in flight " +
		"(\(.value.writes_in_flight | to_entries | map("\(.key) \(.value)") | join(", "))), recovered: " +
		"\(.value.recovered | to_entries | map("\(.key) \(.value)") | join(", ")); violations \(.value.violations)"),
	"crash: converged \(.converged)/\(.trials); known moto drift (List<Subnet::Id> parameters) on \(.known_moto_drift_per_check) stack(s) in every check",
	"crash: violations: \(.violations | length)"' "$OUT"
rl_say "results in $OUT"
[ "$(jq '.violations | length' "$OUT")" = 0 ]
