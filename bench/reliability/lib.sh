# shellcheck shell=bash
# Shared by the reliability harnesses (crash.sh, faults.sh): the embedded stack of
# scripts/demo/stack.sh with fault-injecting proxies in front of moto and Grouparoo, a live
# inventory of the four backends read straight from their APIs, and the verdict of check.jq
# (duplicates, orphans, missing objects, unsettled state rows) plus convergence (`tapestry
# plan --refresh` shows no change, drift only where moto is known to differ).
#
# Everything started here runs in its own process group and is stopped by PID (rl_cleanup,
# which the harnesses run from their EXIT trap); servers listen on 127.0.0.1 only.

RL_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RL_ROOT="${TAPESTRY_SOURCE_DIR:-$(cd "$RL_HERE/../.." && pwd)}" # the checkout (stack.sh)
RL_NAME="${RL_NAME:-reliability}"
RL_PIDS=()   # processes started here (each leads its own process group)
RL_STACKS=() # stack directories brought up with stack.sh

rl_say() { printf '%s: %s\n' "$RL_NAME" "$*" >&2; }
rl_die() {
	rl_say "$*"
	exit 1
}

rl_need() {
	local t
	for t in "$@"; do
		command -v "$t" >/dev/null 2>&1 || rl_die "$t is required"
	done
}

# Stops one process group by its leader's PID: SIGTERM, up to 5 s, then SIGKILL.
rl_stop_pid() {
	local p="$1"
	kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true
	for _ in $(seq 1 50); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL -- "-$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}

rl_cleanup() {
	local p d
	for p in "${RL_PIDS[@]}"; do rl_stop_pid "$p"; done
	RL_PIDS=()
	for d in "${RL_STACKS[@]}"; do bash "$RL_ROOT/scripts/demo/stack.sh" down "$d" || true; done
	RL_STACKS=()
}

# Whether each backend of the stack just sourced answers as itself (not some other process
# that took its port between stack.sh picking it and the server binding it: Grouparoo takes
# seconds to start, and ports are picked free a moment before).
rl_stack_ok() {
	local auth="Authorization: AWS4-HMAC-SHA256 Credential=$AWS_ACCESS_KEY_ID/20260101/us-east-1/cloudformation/aws4_request, SignedHeaders=host, Signature=0"
	curl -sf --max-time 20 "http://127.0.0.1:$AWS_PORT/" -H "$auth" \
		--data 'Action=DescribeStacks&Version=2010-05-15' | grep -q '<DescribeStacksResponse' || return 1
	curl -sf --max-time 20 "http://127.0.0.1:$SF_PORT/fake/catalog" | grep -q '"warehouses"' || return 1
	# the Airbyte fake may be injecting faults: any HTTP answer will do, within a few tries
	local i code=000
	for i in 1 2 3 4 5 6 7 8; do
		code=$(curl -s --max-time 20 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$AB_PORT/api/public/v1/health" || true)
		[ "$code" = 000 ] || break
	done
	[ "$code" != 000 ] || return 1
	curl -sf --max-time 20 "http://127.0.0.1:$GR_PORT/api/v1/models?limit=1" \
		-H "Authorization: Bearer $GR_KEY" | grep -q '"models"' || return 1
}

# Brings the stack up in DIR (Grouparoo required) and sources its stack.env, checking that
# every backend is the one started (a second try in a fresh DIR.2 otherwise: the directory
# used is left in RL_STACK_DIR). Extra arguments for the fakes come from
# STACK_SNOWFLAKE_ARGS and STACK_AIRBYTE_ARGS, as stack.sh reads them.
rl_stack_up() {
	local dir="$1" build="$2" try
	for try in 1 2 3; do
		[ "$try" = 1 ] || dir="$1.$try"
		mkdir -p "$dir"
		RL_STACKS+=("$dir")
		if ! bash "$RL_ROOT/scripts/demo/stack.sh" up "$dir" --build "$build" --grouparoo required \
			>"$dir.up.log" 2>&1; then
			tail -n 20 "$dir.up.log" >&2
			rl_die "the stack did not start (log: $dir.up.log)"
		fi
		# shellcheck disable=SC1091
		source "$dir/stack.env"
		if (set +e; rl_stack_ok); then
			break
		fi
		rl_say "a backend of the stack in $dir is not answering as itself (a port taken by another process?): starting another"
		rl_stack_down "$dir"
		[ "$try" != 3 ] || rl_die "the stack did not come up three times"
	done
	# shellcheck disable=SC2034 # read by the harnesses
	RL_STACK_DIR="$dir"
	# direct endpoints, for the inventory (never through the proxies)
	RL_AWS="http://127.0.0.1:$AWS_PORT"
	RL_GR="http://127.0.0.1:$GR_PORT"
}

rl_stack_down() {
	local dir="$1" keep=() d
	bash "$RL_ROOT/scripts/demo/stack.sh" down "$dir" || true
	for d in "${RL_STACKS[@]}"; do [ "$d" = "$dir" ] || keep+=("$d"); done
	RL_STACKS=("${keep[@]}")
}

# rl_proxy BUILD UPSTREAM LOG [fake_proxy options...]: starts a proxy on a free port and
# sets RL_PROXY_URL and RL_PROXY_PID.
rl_proxy() {
	local build="$1" upstream="$2" log="$3"
	shift 3
	setsid "$build/fake_proxy" --port 0 --upstream "$upstream" --log "$log" "$@" \
		>"$log.out" 2>&1 </dev/null &
	RL_PROXY_PID=$!
	RL_PIDS+=("$RL_PROXY_PID")
	RL_PROXY_URL=""
	for _ in $(seq 1 100); do
		RL_PROXY_URL="$(sed -n 's/^fake_proxy listening on //p' "$log.out" 2>/dev/null)"
		[ -n "$RL_PROXY_URL" ] && return 0
		kill -0 "$RL_PROXY_PID" 2>/dev/null || break
		sleep 0.05
	done
	cat "$log.out" >&2
	rl_die "fake_proxy for $upstream did not start"
}

# A GET/POST that a backend's injected faults must not fail: retried until a 2xx arrives.
rl_fetch() {
	local i
	for i in $(seq 1 40); do
		curl -sf --max-time 30 "$@" && return 0
		sleep "0.$((i < 9 ? i : 9))"
	done
	rl_say "giving up on: curl $*"
	return 1
}

rl_aws() { # SERVICE FORM: an unsigned Query call (moto does not check signatures here)
	rl_fetch "$RL_AWS/" -H "Authorization: AWS4-HMAC-SHA256 Credential=$AWS_ACCESS_KEY_ID/20260101/us-east-1/$1/aws4_request, SignedHeaders=host, Signature=0" --data "$2"
}

# rl_inventory OUT: the live objects of the four backends, as check.jq reads them. Raw
# answers go to files next to OUT and one jq assembles them.
rl_inventory() {
	local out="$1" d tok k i next
	d="$(dirname "$out")/inv"
	rm -rf "$d" && mkdir -p "$d"
	rl_aws cloudformation 'Action=DescribeStacks&Version=2010-05-15' >"$d/stacks.xml" || return 1
	next=""
	for i in $(seq 1 100); do # SSM, paged
		rl_fetch "$RL_AWS/" -H "X-Amz-Target: AmazonSSM.GetParametersByPath" \
			-H 'Content-Type: application/x-amz-json-1.1' \
			-H "Authorization: AWS4-HMAC-SHA256 Credential=$AWS_ACCESS_KEY_ID/20260101/us-east-1/ssm/aws4_request, SignedHeaders=host, Signature=0" \
			--data "{\"Path\":\"/rainshield\",\"Recursive\":true,\"MaxResults\":10${next:+,\"NextToken\":\"$next\"}}" \
			>"$d/ssm.$i.json" || return 1
		next=$(sed -n 's/.*"NextToken": *"\([^"]*\)".*/\1/p' "$d/ssm.$i.json")
		[ -n "$next" ] || break
	done
	rl_fetch "http://127.0.0.1:$SF_PORT/fake/catalog" >"$d/snowflake.json" || return 1
	tok=$(rl_fetch "http://127.0.0.1:$AB_PORT/api/public/v1/applications/token" -H 'Content-Type: application/json' \
		-d "{\"client_id\":\"$AB_ID\",\"client_secret\":\"$AB_SECRET\",\"grant_type\":\"client_credentials\"}" |
		sed -n 's/.*"access_token": *"\([^"]*\)".*/\1/p') || return 1
	for k in sources destinations connections; do
		rl_fetch "http://127.0.0.1:$AB_PORT/api/public/v1/$k?limit=100" -H "Authorization: Bearer $tok" \
			>"$d/airbyte.$k.json" || return 1
	done
	for k in models apps sources properties groups destinations; do
		rl_fetch "$RL_GR/api/v1/$k?limit=100" -H "Authorization: Bearer $GR_KEY" >"$d/grouparoo.$k.json" || return 1
	done
	tr -d '\n' <"$d/stacks.xml" |
		grep -o '<StackId>[^<]*</StackId>\|<StackName>[^<]*</StackName>\|<StackStatus>[^<]*</StackStatus>\|<Key>tapestry:owner</Key>[[:space:]]*<Value>[^<]*' \
			>"$d/stacks.txt" || true
	jq -n --rawfile stacks "$d/stacks.txt" --slurpfile ssm <(cat "$d"/ssm.*.json) \
		--slurpfile sf "$d/snowflake.json" \
		--slurpfile abs "$d/airbyte.sources.json" --slurpfile abd "$d/airbyte.destinations.json" \
		--slurpfile abc "$d/airbyte.connections.json" \
		--slurpfile grm "$d/grouparoo.models.json" --slurpfile gra "$d/grouparoo.apps.json" \
		--slurpfile grs "$d/grouparoo.sources.json" --slurpfile grp "$d/grouparoo.properties.json" \
		--slurpfile grg "$d/grouparoo.groups.json" --slurpfile grd "$d/grouparoo.destinations.json" '
		def gr($x; $k): [$x[0][$k][] | {id, name, key, state}];
		{aws: {stacks: ($stacks | split("\n") | map(select(length > 0)) | reduce .[] as $l ([];
			  if ($l | startswith("<StackId>")) then . + [{id: ($l | gsub("</?StackId>"; "")), owner: null}]
			  elif ($l | startswith("<StackName>")) then .[-1].name = ($l | gsub("</?StackName>"; ""))
			  elif ($l | startswith("<StackStatus>")) then .[-1].status = ($l | gsub("</?StackStatus>"; ""))
			  else .[-1].owner = ($l | sub("^.*<Value>"; "")) end)),
		       ssm: [$ssm[].Parameters[].Name]},
		 snowflake: $sf[0],
		 airbyte: {sources: $abs[0].data, destinations: $abd[0].data, connections: $abc[0].data},
		 grouparoo: {models: gr($grm; "models"), apps: gr($gra; "apps"), sources: gr($grs; "sources"),
			     properties: gr($grp; "properties"), groups: gr($grg; "groups"),
			     destinations: gr($grd; "destinations")}}' >"$out"
}

# rl_state_json DB OUT: the state as check.jq reads it: `tapestry status --json` for what is
# managed, and the applied specs (grants are matched by what they grant) from the database.
rl_state_json() {
	local bin="$1" db="$2" out="$3" status applied
	status=$("$bin" status --state "$db" --json) || return 1
	applied=$(sqlite3 -readonly -json "$db" "SELECT address, applied FROM resources WHERE applied IS NOT NULL" |
		jq -c 'map({(.address): (.applied | fromjson)}) | add // {}') || return 1
	jq -n --argjson s "$status" --argjson a "$applied" '{state: $s.resources, applied: $a}' >"$out"
}

# The drift moto always shows: it answers a List<AWS::EC2::Subnet::Id> stack parameter in
# Python list syntax ("['subnet-a', 'subnet-b']" for "subnet-a,subnet-b"). Any other drift
# counts against convergence. (A jq condition over one drift entry.)
# shellcheck disable=SC2016
RL_KNOWN_DRIFT='.applied as $a | (.live | type) == "string" and ($a | type) == "string"
	and (.live == "[" + ($a | split(",") | map("'"'"'" + . + "'"'"'") | join(", ")) + "]")'

# rl_verdict BIN DB REPO_DIR_OR_ARGS... : writes $RL_VERDICT (a JSON object): violations
# from check.jq plus convergence from `tapestry plan --refresh`. REPO args are what `tapestry
# plan` takes to name the commit (a directory, or --repo R --rev C --path .).
rl_verdict() {
	local bin="$1" db="$2" work="$3"
	shift 3
	local plan prc=0
	rl_inventory "$work/live.json" || return 1
	rl_state_json "$bin" "$db" "$work/state.json" || return 1
	# under injected faults a plan's observation can fail like any run: it is asked again
	# (RL_PLAN_ATTEMPTS times at most) before its answer counts
	for _ in $(seq 1 "${RL_PLAN_ATTEMPTS:-1}"); do
		prc=0
		plan=$("$bin" plan "$@" --state "$db" --refresh --format json 2>"$work/plan.err") || prc=$?
		[ "$prc" = 1 ] || break
	done
	[ -n "$plan" ] || plan='{"summary":{},"resource_changes":[]}'
	RL_VERDICT=$(jq -n --slurpfile live "$work/live.json" --slurpfile st "$work/state.json" \
		--arg pipeline rainshield \
		'{state: $st[0].state, applied: $st[0].applied, live: $live[0], pipeline: $pipeline,
		  bootstrap_ssm: ["/rainshield/airbyte/client_id", "/rainshield/airbyte/client_secret"]}' |
		jq -c -f "$RL_HERE/check.jq") || return 1
	RL_VERDICT=$(jq -c --argjson plan "$plan" --argjson prc "$prc" --arg perr "$(head -c 400 "$work/plan.err")" "
		(\$plan.summary // {}) as \$s
		| ([\$plan.resource_changes[]? | . as \$r | .drift[]? | select($RL_KNOWN_DRIFT | not)
		    | \"\(\$r.address): \(.path)\"]) as \$drift
		| ([\$plan.resource_changes[]? | . as \$r | .drift[]? | select($RL_KNOWN_DRIFT)]
		   | length) as \$known
		| .converged = (\$prc == 0 and ((\$s.add // 0) + (\$s.change // 0) + (\$s.destroy // 0)
		                 + (\$s.forget // 0)) == 0 and (\$drift | length) == 0)
		| .plan = {exit: \$prc, summary: \$s, other_drift: \$drift, known_moto_drift: \$known,
		           error: (if \$prc == 0 then null else \$perr end)}
		| if .converged then . else .violations += [{type: \"not-converged\", provider: \"all\",
		    what: \"plan --refresh: exit \(\$prc), \(\$s | tostring) \(\$drift | join(\"; \")) \(\$perr)\"}] end
	" <<<"$RL_VERDICT") || return 1
}
