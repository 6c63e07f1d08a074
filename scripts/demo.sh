#!/usr/bin/env bash
# The README's first command: the embedded demo. Installs what it needs, builds Tapestry, starts
# local backends on 127.0.0.1 (moto_server for AWS, the Snowflake and Airbyte fakes, the real
# Grouparoo 0.9 from npm), makes a Git repository from examples/kickstart plus a small demo
# overlay (scripts/demo/), runs `tapestry run` against it and narrates three commits: the first
# sync, a one-line change (a bigger Airbyte host) planned as a pull request and then merged,
# and the teardown of the syncing side. Stops everything it started at the end, on error and
# on Ctrl-C, and leaves a summary.
#
#   bash scripts/demo.sh [--keep]
#
#   --keep   leave the backends and the controller running (and the temp dir in place) for
#            exploration; the command to stop them is printed.
#
# Everything lives in a temp dir (printed); every port is picked free at start.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ -f "$ROOT/CMakeLists.txt" ] || ROOT="$(cd "$ROOT/.." && pwd)"
cd "$ROOT"

KEEP=0
for a in "$@"; do
	case "$a" in
	--keep) KEEP=1 ;;
	-h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "demo: unknown argument $a (usage: bash scripts/demo.sh [--keep])" >&2; exit 64 ;;
	esac
done

if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
	say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
	warn() { printf '\033[33m!! %s\033[0m\n' "$*"; }
else
	say() { printf '\n== %s\n' "$*"; }
	warn() { printf '!! %s\n' "$*"; }
fi
note() { printf '   %s\n' "$*"; }
T0=$(date +%s)
elapsed() { echo $(($(date +%s) - T0)); }

# ---------------------------------------------------------------- cleanup (set up first)
W=""
PIDS=()      # processes started here besides the stack (the controller)
STACK=0      # 1 once scripts/demo/stack.sh up has run in $W
DONE=0
SUMMARY=()
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ "$KEEP" = 1 ] && [ "$DONE" = 1 ]; then
		say "--keep: everything is left running"
		note "stop it all with: kill -- ${PIDS[*]/#/-} ; bash scripts/demo/stack.sh down $W; rm -rf $W"
		exit "$rc"
	fi
	[ ${#PIDS[@]} -gt 0 ] || [ "$STACK" = 1 ] && echo "demo: stopping what it started"
	# the controller first (SIGTERM: it finishes the actions in flight and exits)
	for p in "${PIDS[@]}"; do kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true; done
	for _ in $(seq 1 50); do
		local alive=0
		for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ "$alive" = 0 ] && break
		sleep 0.1
	done
	for p in "${PIDS[@]}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
	[ "$STACK" = 1 ] && bash scripts/demo/stack.sh down "$W"
	if [ -n "$W" ] && [ -d "$W" ]; then
		if [ "$rc" -ne 0 ]; then
			local keepdir="${TMPDIR:-/tmp}/tapestry-demo-last-failure"
			rm -rf "$keepdir"; mkdir -p "$keepdir"
			cp "$W"/*.log "$keepdir/" 2>/dev/null || true
			echo "demo: logs kept in $keepdir"
		fi
		rm -rf "$W"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'echo; warn "interrupted: stopping everything the demo started"; exit 130' INT TERM

# ---------------------------------------------------------------- install and build
say "installing what the demo needs and building Tapestry"
bash scripts/install-deps.sh
need_sudo=()
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && need_sudo=(sudo)
if ! command -v moto_server >/dev/null 2>&1; then
	note "moto_server (the embedded AWS) is missing: pip install 'moto[server]'"
	command -v pip3 >/dev/null 2>&1 || "${need_sudo[@]}" apt-get install -y -qq python3-pip >/dev/null
	python3 -m pip install --quiet --user 'moto[server]' 2>/dev/null ||
		python3 -m pip install --quiet --user --break-system-packages 'moto[server]'
	export PATH="$HOME/.local/bin:$PATH"
	command -v moto_server >/dev/null 2>&1 || { warn "could not install moto_server"; exit 1; }
fi
for t in python3 openssl jq curl git sqlite3; do
	command -v "$t" >/dev/null 2>&1 || { warn "$t is missing"; exit 1; }
done
cmake -S . -B build >/dev/null
cmake --build build -j "$(nproc)" --target tapestry fake_snowflake fake_airbyte >/dev/null
BIN="$ROOT/build/tapestry"

W="$(mktemp -d "${TMPDIR:-/tmp}/tapestry-demo.XXXXXX")"
note "all demo state is in $W (removed at the end unless --keep)"

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
wait_port() { # PORT NAME LOG PID
	for _ in $(seq 1 300); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		kill -0 "$4" 2>/dev/null || { warn "$2 exited at start"; tail -n 20 "$3"; exit 1; }
		sleep 0.1
	done
	warn "$2 did not listen on 127.0.0.1:$1 within 30 s"; tail -n 20 "$3"; exit 1
}
start_bg() { # NAME LOG cmd... : own process group, PID tracked
	local log="$2"; shift 2
	setsid "$@" >"$log" 2>&1 </dev/null &
	PIDS+=($!)
	LAST_PID=$!
}

# ---------------------------------------------------------------- backends and repository
say "starting the embedded backends on 127.0.0.1 (scripts/demo/stack.sh; free ports picked now)"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
	note "Grouparoo needs Node.js and npm: apt-get install nodejs npm libnode-dev"
	"${need_sudo[@]}" apt-get install -y -qq --no-install-recommends nodejs npm libnode-dev g++ make >/dev/null 2>&1 || true
fi
STACK=1
bash scripts/demo/stack.sh up "$W" --build build --grouparoo optional 2>&1 | sed 's/^stack: /   /'
# shellcheck disable=SC1091
source "$W/stack.env"
: "${VPC:?}" "${SUBNET1:?}" "${SUBNET2:?}" "${ZONE:?}" "${AWS_PORT:?}" "${SF_PORT:?}" "${AB_PORT:?}"
REPO="$STACK_REPO"
[ "$GROUPAROO" = 1 ] || warn "the Grouparoo part is skipped: $GR_WHY. The syncing side (resources/syncing.yaml) is left out of the demo's repository; everything else runs."
aws_query() { # SERVICE FORM : an unsigned Query call to moto (it is not enforcing signatures)
	curl -sf "http://127.0.0.1:$AWS_PORT/" -H "Authorization: AWS4-HMAC-SHA256 Credential=$AWS_ACCESS_KEY_ID/20260101/us-east-1/$1/aws4_request, SignedHeaders=host, Signature=0" \
		--data "$2"
}
aws_json() { # TARGET BODY
	curl -sf "http://127.0.0.1:$AWS_PORT/" -H "X-Amz-Target: $1" -H 'Content-Type: application/x-amz-json-1.1' \
		-H "Authorization: AWS4-HMAC-SHA256 Credential=$AWS_ACCESS_KEY_ID/20260101/us-east-1/ssm/aws4_request, SignedHeaders=host, Signature=0" \
		--data "$2"
}
say "what the pipeline expects to exist before it (demo overlay, part 1)"
note "moto: VPC $VPC, subnets $SUBNET1 and $SUBNET2, hosted zone $ZONE (the example's ids are placeholders)"
note "SSM /rainshield/airbyte/client_id and client_secret: the Airbyte application's credentials,"
note "stored by the operator after Airbyte is up (kickstart README), here the fake's."

say "the pipeline repository: examples/kickstart + the demo overlay (scripts/demo/)"
note "what the overlay changes, and why (examples/kickstart itself is untouched):"
note " - the VPC, subnet and hosted-zone ids: the ones just created in moto;"
note " - the two key files: keys generated for this demo in $W/keys;"
note " - templates/grouparoo.yaml: the RDS/ElastiCache attributes moto's CloudFormation cannot"
note "   evaluate become fixed demo values, and the ECR repository gets an explicit name;"
note " - secrets: demo values exported as the environment variables infrastructure.yaml names;"
if [ "$GROUPAROO" = 1 ]; then
	note " - Grouparoo: a SQLite file stands in for reading EMAIL_MODEL from Snowflake (the fake"
	note "   keeps a catalog, not rows) and for the Mailchimp audience (saving a Mailchimp"
	note "   destination calls Mailchimp); it holds the case study's four people."
else
	note " - Grouparoo: skipped (see above), resources/syncing.yaml removed."
fi
gitc() { git -C "$REPO" -c user.name="Rainshield Data" -c user.email=data@rainshield.example "$@"; }
"$BIN" validate "$REPO" | sed "s:$REPO:rainshield-pipeline:"

# ---------------------------------------------------------------- the controller
CTL_PORT=$(free_port)
API="http://127.0.0.1:$CTL_PORT"
STATE="$W/state/state.db"
mkdir -p "$W/state"
cat >"$W/controller.yaml" <<EOF
repository:
  url: file://$REPO
  branch: main
  path: .
state_dir: $W/state
listen: 127.0.0.1:$CTL_PORT
poll_interval: 2s
EOF
say "starting the controller: tapestry run --config $W/controller.yaml"
note "TAPESTRY_ENDPOINT_AWS/_SNOWFLAKE/_AIRBYTE${GR_PORT:+/_GROUPAROO} point the providers at the local servers"
start_bg controller "$W/controller.log" "$BIN" run --config "$W/controller.yaml"
CTL_PID=$LAST_PID
wait_port "$CTL_PORT" "tapestry run" "$W/controller.log" "$CTL_PID"
note "controller pid $CTL_PID, API and dashboard at $API/"

status_json() { curl -sf "$API/api/status" || echo '{}'; }
wait_applied() { # SHA LABEL SYNCS_BEFORE : wait until the controller has synced SHA
	local sha="$1" label="$2" before="$3" s t0
	t0=$(date +%s)
	while :; do
		s=$(status_json)
		if [ "$(jq -r '.revision.applied // ""' <<<"$s")" = "$sha" ] && [ "$(jq -r '.syncs' <<<"$s")" -gt "$before" ]; then
			SYNC_SECS=$(($(date +%s) - t0))
			return 0
		fi
		if [ "$(jq -r '.revision.fetched // ""' <<<"$s")" = "$sha" ] && [ "$(jq -r '.syncs' <<<"$s")" -gt "$before" ] &&
			[ "$(jq -r '.last_sync.result // ""' <<<"$s")" != "" ] && [ "$(jq -r '.last_sync.result' <<<"$s")" != "applied" ] &&
			[ "$(jq -r '.last_sync.result' <<<"$s")" != "in-sync" ]; then
			warn "$label: the sync of ${sha:0:8} ended \"$(jq -r '.last_sync.result' <<<"$s")\": $(jq -r '.last_sync.error // ""' <<<"$s")"
			jq -r '.last_sync.problems[]? | "   - " + .' <<<"$s"
			echo "--- controller log (last 30 lines)"; tail -n 30 "$W/controller.log"
			exit 1
		fi
		if [ $(($(date +%s) - t0)) -gt 180 ]; then
			warn "$label: ${sha:0:8} not applied within 180 s"
			jq . <<<"$s"
			echo "--- controller log (last 30 lines)"; tail -n 30 "$W/controller.log"
			exit 1
		fi
		kill -0 "$CTL_PID" 2>/dev/null || { warn "the controller exited"; tail -n 30 "$W/controller.log"; exit 1; }
		sleep 1
	done
}
ab_writes() { jq -r 'select(.method != "GET" and (.path | test("applications/token") | not)) | .path' "$W/airbyte-requests.log" 2>/dev/null | wc -l; }
syncs() { jq -r '.syncs // 0' <<<"$(status_json)"; }
last_run() { curl -sf "$API/api/runs?limit=1" | jq -c '.[0] // .runs[0] // {}'; }
run_line() { last_run | jq -r '"\(.result // "?") (" + ((.counts // {}) | to_entries | map(select(.value > 0 and .key != "retries")) | map("\(.key) \(.value)") | join(", ")) + ")"'; }

# ---------------------------------------------------------------- 1. the first syncs
say "commit 1: the whole pipeline — stacks, SSM parameters, Snowflake, EMAIL_MODEL, Airbyte${GR_PORT:+, Grouparoo}"
note "One commit creates it all, in dependency order: the SSM parameters land before the"
note "resources whose credentials read them with \${secret:ssm:...}."
HEAD1=$(gitc rev-parse HEAD)
wait_applied "$HEAD1" "first sync" 0
S1SECS=$SYNC_SECS
note "applied ${HEAD1:0:8} in ${S1SECS}s: $(run_line)"
SUMMARY+=("commit 1 ${HEAD1:0:8} (the whole pipeline): $(run_line) in ${S1SECS}s")
show_status() {
	"$BIN" status --state "$STATE" --api "$API" >"$W/status.txt" 2>&1 || true
	local n
	n=$("$BIN" status --state "$STATE" --json | jq -r '(.resources // .) | length')
	echo "\$ tapestry status --state $STATE --api $API"
	sed -n '1,6p' "$W/status.txt"
	echo "... ($n resources in all)"
	sed -n '/^Controller at/,$p' "$W/status.txt"
}
show_status
echo "   managed resources by kind:"
"$BIN" status --state "$STATE" --json | jq -r '(.resources // .)[] | .kind' | sort | uniq -c | sed 's/^/   /'
echo "   live, as the servers see it:"
ssm_names() { # every parameter name under /rainshield (paged)
	local tok="" out
	while :; do
		out=$(aws_json AmazonSSM.GetParametersByPath "$(jq -nc --arg t "$tok" '{Path:"/rainshield",Recursive:true,MaxResults:10} + (if $t == "" then {} else {NextToken:$t} end)')")
		jq -r '.Parameters[].Name' <<<"$out"
		tok=$(jq -r '.NextToken // ""' <<<"$out")
		[ -n "$tok" ] || break
	done
}
live_report() {
	note "AWS stacks: $(aws_query cloudformation 'Action=DescribeStacks&Version=2010-05-15' | grep -o '<StackName>[^<]*' | sed 's/<StackName>//' | tr '\n' ' ')"
	note "S3 buckets: $(curl -sf "http://127.0.0.1:$AWS_PORT/" -H "Authorization: AWS4-HMAC-SHA256 Credential=$AWS_ACCESS_KEY_ID/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0" | grep -o '<Name>[^<]*' | sed 's/<Name>//' | tr '\n' ' ')"
	note "SSM parameters under /rainshield: $(ssm_names | wc -l)"
	note "Snowflake: $(curl -sf "http://127.0.0.1:$SF_PORT/fake/catalog" | jq -r '"warehouses " + ((.warehouses // {}) | keys | join(",")) + "; roles " + ((.roles // {}) | keys | map(select(IN("ACCOUNTADMIN","ORGADMIN","PUBLIC","SECURITYADMIN","SYSADMIN","USERADMIN") | not)) | join(",")) + "; EMAIL_MODEL " + (if .databases.ANALYTICS.schemas.MODELS.views.EMAIL_MODEL then "created" else "missing" end)')"
	note "Airbyte: $(curl -sf "http://127.0.0.1:$AB_PORT/api/public/v1/applications/token" -H 'Content-Type: application/json' -d "{\"client_id\":\"$AB_ID\",\"client_secret\":\"$AB_SECRET\",\"grant_type\":\"client_credentials\"}" | jq -r .access_token | {
		read -r tok
		for k in sources destinations connections; do
			printf '%s %s  ' "$(curl -sf "http://127.0.0.1:$AB_PORT/api/public/v1/$k" -H "Authorization: Bearer $tok" | jq '.data | length')" "$k"
		done
	})"
if [ "$GROUPAROO" = 1 ]; then
	note "Grouparoo: $(for k in models apps sources properties groups destinations; do
		printf '%s %s  ' "$(curl -sf "http://127.0.0.1:$GR_PORT/api/v1/$k" -H "Authorization: Bearer $GR_KEY" | jq "(.$k // .${k%s}s // []) | length")" "$k"
	done)"
	fi
}
live_report

# ---------------------------------------------------------------- 3. a one-line change
say "commit 2: one line, on a branch — a bigger Airbyte host (InstanceType t3.xlarge -> t3.2xlarge)"
note "In the case study, Salesforce extraction overloaded the Airbyte instance (CPU pegged, health"
note "checks failing, 504s) and the fix was a bigger instance: here a one-line commit, reviewed as"
note "a pull request with its plan, applied when merged."
gitc checkout -q -b bigger-airbyte-host
sed -i 's/^    InstanceType: t3.xlarge$/    InstanceType: t3.2xlarge/' "$REPO/resources/infrastructure.yaml"
gitc commit -q -am "Airbyte host: t3.2xlarge (Salesforce extraction overloads t3.xlarge)"
PR=$(gitc rev-parse HEAD) BASE=$(gitc rev-parse main)
gitc diff --stat main | sed 's/^/   /'
echo "\$ tapestry plan --repo rainshield-pipeline --rev ${PR:0:8} --base ${BASE:0:8} --path .   (the pull request's plan)"
NO_COLOR=1 "$BIN" plan --repo "$REPO" --rev "$PR" --base "$BASE" --path . | sed 's/^/   /'
note "merging into main; the controller notices within its 2 s poll"
gitc checkout -q main
gitc merge -q --ff-only bigger-airbyte-host
n=$(syncs)
abw0=$(ab_writes)
wait_applied "$PR" "the change" "$n"
S3SECS=$SYNC_SECS
echo "\$ tapestry history --state ... --limit 1"
"$BIN" history --state "$STATE" --limit 1 | sed 's/^/   /'
itype=$(aws_query cloudformation "Action=DescribeStacks&StackName=rainshield-airbyte&Version=2010-05-15" | tr -d '\n ' | grep -o '<ParameterKey>InstanceType</ParameterKey><ParameterValue>[^<]*' | sed 's/.*>//')
note "moto: stack rainshield-airbyte now has InstanceType=${itype:-?} (moto records the update; it"
note "does not resize its pretend instance). The other changes of the run, if any, follow from"
note "the stack's outputs:"
"$BIN" events --state "$STATE" --limit 6 | sed 's/^/   /'
note "(the plan for the pull request listed 1 change; the run also re-sent the 2 resources that"
note "reference the stack's outputs, which moto returned unchanged: $(($(ab_writes) - abw0)) write call(s) reached Airbyte)"
SUMMARY+=("commit 2 ${PR:0:8} (bigger Airbyte host): $(run_line) in ${S3SECS}s")

# ---------------------------------------------------------------- 4. teardown by commit
say "commit 3: teardown of the syncing side, by commit"
[ "$GROUPAROO" = 1 ] && note "Removing from Git: resources/syncing.yaml (the Grouparoo objects), the grouparoo-service stack" ||
	note "Removing from Git (syncing.yaml is already out: Grouparoo skipped): the grouparoo-service stack"
note "and the three SSM parameters only Grouparoo uses (lifecycle deletion: retain)."
[ -f "$REPO/resources/syncing.yaml" ] && gitc rm -q resources/syncing.yaml
python3 - "$REPO/resources/infrastructure.yaml" <<'PY'
import sys
path = sys.argv[1]
drop = {("aws.stack", "grouparoo-service"), ("aws.ssm_parameter", "grouparoo-api-key"),
        ("aws.ssm_parameter", "grouparoo-server-token"), ("aws.ssm_parameter", "mailchimp-api-key")}
docs = open(path, encoding="utf-8").read().split("\n---\n")
keep = [d for d in docs if not any(f"kind: {k}\nname: {n}\n" in d for k, n in drop)]
assert len(docs) - len(keep) == len(drop), "examples/kickstart changed"
open(path, "w", encoding="utf-8").write("\n---\n".join(keep))
PY
gitc commit -q -am "Tear down the syncing side (Grouparoo)"
HEAD4=$(gitc rev-parse HEAD)
echo "\$ tapestry plan --repo rainshield-pipeline --rev ${HEAD4:0:8} --base ${PR:0:8} --path ."
NO_COLOR=1 "$BIN" plan --repo "$REPO" --rev "$HEAD4" --base "$PR" --path . | grep -E '^\s*#|^Plan' | sed 's/^/   /'
n=$(syncs)
wait_applied "$HEAD4" "the teardown" "$n"
S4SECS=$SYNC_SECS
note "applied ${HEAD4:0:8} in ${S4SECS}s. What is left:"
live_report
note "retained, as the pipeline says: $(ssm_names | grep -cE '^/rainshield/(grouparoo|mailchimp)/') of the 3 Grouparoo/Mailchimp SSM parameters are still in SSM (forgotten, not deleted);"
note "the staging bucket of the airbyte-host stack is untouched (DeletionPolicy: Retain keeps it even when that stack goes)."
SUMMARY+=("commit 3 ${HEAD4:0:8} (teardown of the syncing side): $(run_line) in ${S4SECS}s")

# ---------------------------------------------------------------- where to look
say "where to look"
note "dashboard:   $API/"
note "metrics:     $API/metrics"
note "API:         $API/api/status  /api/resources  /api/runs?limit=5  /api/events?limit=20"
note "CLI:         build/tapestry status --state $STATE --api $API"
note "             build/tapestry history --state $STATE ; build/tapestry events --state $STATE --limit 20"
echo "   a few metrics now:"
curl -sf "$API/metrics" | grep -E '^tapestry_(reconcile_total|drifted_resources|api_requests_total)' | head -n 12 | sed 's/^/     /'
drifted=$(curl -sf "$API/api/resources" | jq -r '(if type == "array" then . else .resources end)[] | select((.drift // []) | length > 0) | .address + ": " + (.drift | map(tostring) | join("; "))' | head -n 5)
if [ -n "$drifted" ]; then
	echo "   drift the controller reports (self_heal is off in tapestry.yaml, so it is reported, not corrected):"
	printf '     %s\n' "$drifted" | cut -c1-150
	grep -q "\['subnet-" <<<"$drifted" && note "(that one is moto's: it answers a List<Subnet::Id> stack parameter in Python list syntax)"
fi

say "summary"
for l in "${SUMMARY[@]}"; do note "$l"; done
note "managed now: $("$BIN" status --state "$STATE" --json | jq -r '(.resources // .) | length') resources; controller syncs: $(syncs)"
[ "$GROUPAROO" = 1 ] || note "skipped: the Grouparoo part ($GR_WHY)"
note "wall time: $(elapsed)s"
DONE=1
if [ "$KEEP" = 1 ]; then
	note "--keep: the controller and the backends stay up; commit to $REPO (branch main) and watch $API/"
fi
