#!/usr/bin/env bash
# Tapestry side by side with what its users would run instead, on one moto_server: the AWS
# part of the kickstart pipeline (two CloudFormation stacks, fourteen SSM parameters: the
# examples/kickstart files after the demo overlay and moto_overlay.py) built three ways:
#   tapestry    `tapestry apply` of the pipeline (observe, plan, apply what differs),
#   imperative  imperative.sh: `aws cloudformation deploy` + `aws ssm put-parameter
#               --overwrite`, the way the original CLI's deploy/rebuild worked,
#   ansible     playbook.yml: amazon.aws.cloudformation + community.aws.ssm_parameter
#               (Debian 12's ansible package),
# each from an empty account (moto reset, then the VPC, subnets and hosted zone the pipeline
# expects) and then once more with nothing to change (the no-op run). For every run: wall
# time, CPU time of the tool's processes, HTTP requests moto served (its access log, one line
# each), which API actions they were (moto's request recording), and afterwards a check that
# the whole set is live and equal to the pipeline (compare.py verify).
#
#   bash bench/compare/run.sh TAPESTRY_BINARY [FILE | --out FILE] [--rounds N] [--no-install]
#
# Writes bench/results/compare.json (or FILE) and prints the table (medians over N rounds,
# default 3; each round starts with a different tool). Installs ansible, python3-boto3,
# python3-botocore and awscli from Debian when they are missing (not with --no-install);
# uses Debian's /usr/bin/aws and /usr/bin/python3 for the two other tools whatever else is on
# PATH. Everything runs on 127.0.0.1; moto is bounded to an hour and stopped at exit.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

usage() { sed -n '16,22p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64; }
[ $# -ge 1 ] || usage
case "$1" in -h | --help) usage ;; esac
TAPESTRY="$(realpath "$1")"
shift
ROUNDS=3 OUT="$ROOT/bench/results/compare.json" INSTALL=1
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) ROUNDS=${2:?}; shift 2 ;;
	--out) OUT=${2:?}; shift 2 ;;
	--no-install) INSTALL=0; shift ;;
	-*) usage ;;
	*) OUT=$1; shift ;; # the output file may also come second, without --out
	esac
done
[ -x "$TAPESTRY" ] || { echo "compare: $TAPESTRY is not an executable" >&2; exit 64; }
[[ "$ROUNDS" =~ ^[1-9][0-9]?$ ]] || { echo "compare: --rounds takes 1..99" >&2; exit 64; }
OUT="$(realpath -m "$OUT")"

# ------------------------------------------------------------------ tools
PY=/usr/bin/python3 # Debian's: Ansible and the aws CLI run on it, with python3-boto3
have_tools() {
	[ -x /usr/bin/ansible-playbook ] && [ -x /usr/bin/aws ] &&
		"$PY" -c 'import boto3, botocore, yaml' 2>/dev/null &&
		[ -f /usr/lib/python3/dist-packages/ansible_collections/community/aws/plugins/modules/ssm_parameter.py ]
}
if ! have_tools; then
	[ "$INSTALL" = 1 ] || { echo "compare: ansible/awscli/python3-boto3 missing (--no-install)" >&2; exit 1; }
	sudo=()
	[ "$(id -u)" -ne 0 ] && sudo=(sudo)
	echo "compare: installing ansible python3-boto3 python3-botocore awscli (Debian)"
	"${sudo[@]}" apt-get install -y -qq ansible python3-boto3 python3-botocore awscli >/dev/null ||
		{ "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq ansible python3-boto3 python3-botocore awscli >/dev/null; }
	have_tools || { echo "compare: the Debian packages did not provide the tools" >&2; exit 1; }
fi
AWS_CLI=/usr/bin/aws # Debian's awscli, not a pyenv or pip one that may come first on PATH
MOTO=$(command -v moto_server) || { echo "compare: moto_server not found (pip install 'moto[server]')" >&2; exit 1; }
for t in curl jq openssl; do command -v "$t" >/dev/null || { echo "compare: $t is missing" >&2; exit 1; }; done

W="$(mktemp -d "${TMPDIR:-/tmp}/tapestry-compare.XXXXXX")"
MOTO_PID=""
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [ -n "$MOTO_PID" ]; then
		kill -TERM "$MOTO_PID" 2>/dev/null || true
		wait "$MOTO_PID" 2>/dev/null || true
	fi
	if [ "$rc" -ne 0 ]; then
		echo "compare: failed; logs kept in $W" >&2
	else
		rm -rf "$W"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# One environment for all three: dummy credentials (moto does not check signatures here),
# no shared config files, no instance metadata service, no endpoint variables but ours.
unset AWS_ENDPOINT_URL AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN TAPESTRY_ENDPOINT_AWS
: >"$W/aws-config"
export AWS_ACCESS_KEY_ID=AKIACOMPAREBENCH0000 AWS_SECRET_ACCESS_KEY=compare-secret \
	AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
	AWS_CONFIG_FILE="$W/aws-config" AWS_SHARED_CREDENTIALS_FILE="$W/aws-config" AWS_PAGER="" \
	ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_LOCAL_TEMP="$W/ansible-tmp" \
	ANSIBLE_REMOTE_TEMP="$W/ansible-tmp" \
	ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3 AWS_CLI
# The secrets resources/infrastructure.yaml reads from the environment (bench values).
export RAINSHIELD_STAGING_ACCESS_KEY_ID=AKIABENCHSTAGING0000 RAINSHIELD_STAGING_SECRET_ACCESS_KEY=bench-staging-secret \
	ZOOM_ACCOUNT_ID=bench-zoom-account ZOOM_CLIENT_ID=bench-zoom-client ZOOM_CLIENT_SECRET=bench-zoom-secret \
	SALESFORCE_CLIENT_ID=bench-sf-client SALESFORCE_CLIENT_SECRET=bench-sf-secret SALESFORCE_REFRESH_TOKEN=bench-sf-refresh \
	SNOWFLAKE_GROUPAROO_PASSWORD="Bench-Grouparoo-Pa55!" MAILCHIMP_API_KEY=bench000000000000000000000000000-us6 \
	GROUPAROO_API_KEY=bench_grouparoo_api_key GROUPAROO_SERVER_TOKEN=bench-server-token
mkdir -p "$W/keys" && chmod 700 "$W/keys"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$W/keys/airbyte_user_key.p8" 2>/dev/null

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg) # the machine may be shared: recorded with the figures
VERSIONS="$W/versions.json"
jq -n --arg tapestry "$("$TAPESTRY" version 2>&1 | sed -n 1p)" \
	--arg checkout "$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)" \
	--arg aws "$("$AWS_CLI" --version 2>&1)" \
	--arg ansible "$(/usr/bin/ansible --version 2>/dev/null | sed -n 1p)" \
	--arg collections "$(/usr/bin/ansible-galaxy collection list 2>/dev/null | awk '/^(amazon|community)\.aws / {print $1 " " $2}' | paste -sd ';')" \
	--arg boto3 "$("$PY" -c 'import boto3, botocore; print(boto3.__version__, botocore.__version__)')" \
	--arg python "$("$PY" --version 2>&1)" \
	--arg moto "$("$(dirname "$(realpath "$MOTO")")/python" -c 'import moto; print(moto.__version__)' 2>/dev/null ||
		python3 -c 'import moto; print(moto.__version__)' 2>/dev/null || echo unknown)" \
	'{tapestry:$tapestry, checkout:$checkout, aws_cli:$aws, ansible:$ansible, collections:$collections,
	  "boto3 botocore":$boto3, python_for_ansible_and_aws_cli:$python, moto:$moto}' >"$VERSIONS"
jq -r 'to_entries[] | "  \(.key): \(.value)"' "$VERSIONS"

# ------------------------------------------------------------------ moto
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
EP="http://127.0.0.1:$PORT"
LOG="$W/moto.log" REC="$W/moto-recording.jsonl"
: >"$REC"
# Bounded: moto stops by itself after an hour even if this script is killed hard.
MOTO_ENABLE_RECORDING=True MOTO_RECORDER_FILEPATH="$REC" \
	timeout 3600 "$MOTO" -H 127.0.0.1 -p "$PORT" >"$LOG" 2>&1 </dev/null &
MOTO_PID=$!
for i in $(seq 1 300); do
	(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
	kill -0 "$MOTO_PID" 2>/dev/null || { echo "compare: moto_server exited" >&2; tail "$LOG" >&2; exit 1; }
	[ "$i" = 300 ] && { echo "compare: moto_server did not listen within 30 s" >&2; exit 1; }
	sleep 0.1
done
echo "  moto_server: $EP (pid $MOTO_PID)"

log_count() { grep -cE '"(GET|POST|PUT|DELETE|HEAD|PATCH) [^"]*" [0-9]{3} ' "$LOG" || true; }
rec_count() { wc -l <"$REC"; }
settle() { # wait (at most 10 s) until moto has logged every request it answered
	local a b _
	a=$(log_count)
	for _ in $(seq 1 50); do
		sleep 0.2
		b=$(log_count)
		[ "$a" = "$b" ] && return 0
		a=$b
	done
	echo "compare: moto did not go idle" >&2
	exit 1
}

sig() { echo "Authorization: AWS4-HMAC-SHA256 Credential=$AWS_ACCESS_KEY_ID/20260101/us-east-1/$1/aws4_request, SignedHeaders=host, Signature=0"; }
xml() { grep -o "<$1>[^<]*" | head -n 1 | sed "s:<$1>::"; }
# An empty account with what the pipeline expects to exist before it: the demo's bootstrap.
fresh_account() { # SET_DIR
	local set=$1 vpc s1 s2 zone
	curl -sf -X POST "$EP/moto-api/reset" >/dev/null
	vpc=$(curl -sf "$EP/" -H "$(sig ec2)" --data "Action=CreateVpc&CidrBlock=10.0.0.0/16&Version=2016-11-15" | xml vpcId)
	s1=$(curl -sf "$EP/" -H "$(sig ec2)" --data "Action=CreateSubnet&VpcId=$vpc&CidrBlock=10.0.1.0/24&AvailabilityZone=us-east-1a&Version=2016-11-15" | xml subnetId)
	s2=$(curl -sf "$EP/" -H "$(sig ec2)" --data "Action=CreateSubnet&VpcId=$vpc&CidrBlock=10.0.2.0/24&AvailabilityZone=us-east-1b&Version=2016-11-15" | xml subnetId)
	zone=$(curl -sf "$EP/2013-04-01/hostedzone" -H 'Content-Type: application/xml' -H "$(sig route53)" \
		--data "<CreateHostedZoneRequest xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><Name>internal.</Name><CallerReference>compare-$RANDOM</CallerReference></CreateHostedZoneRequest>" |
		xml Id | sed 's:.*/::')
	if [ -z "$vpc" ] || [ -z "$s1" ] || [ -z "$s2" ] || [ -z "$zone" ]; then
		echo "compare: moto bootstrap failed" >&2
		exit 1
	fi
	# The managed set: examples/kickstart with the demo overlay (these ids; its key paths) and
	# moto_overlay.py (parameters moto can compare), reduced to the AWS part for Tapestry;
	# the other two read its templates/.
	rm -rf "$set"
	cp -r "$ROOT/examples/kickstart" "$set"
	"$PY" "$ROOT/scripts/demo/overlay.py" "$set" "$vpc" "$s1" "$s2" "$zone" "$W/keys" - >/dev/null
	ami=$(curl -sf "$EP/" -H "X-Amz-Target: AmazonSSM.GetParameter" -H 'Content-Type: application/x-amz-json-1.1' -H "$(sig ssm)" \
		--data '{"Name":"/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"}' | jq -r '.Parameter.Value // empty')
	[ -n "$ami" ] || { echo "compare: moto has no Amazon Linux 2023 image parameter" >&2; exit 1; }
	"$PY" "$HERE/moto_overlay.py" "$set" "$ami"
	rm -rf "$set/models" "$set/resources/ingestion.yaml" "$set/resources/transformation.yaml" "$set/resources/warehouse.yaml"
	cat >"$set/tapestry.yaml" <<-EOF
		# The AWS part of examples/kickstart (bench/compare): two stacks, fourteen parameters.
		pipeline: rainshield
		settings:
		  concurrency: 8
		providers:
		  aws:
		    region: us-east-1
	EOF
	mkdir -p "$set/keys"
	cp "$W/keys/airbyte_user_key.p8" "$set/keys/"
	printf 'VPC_ID=%s\nSUBNET_1=%s\nSUBNET_2=%s\nZONE_ID=%s\nAMI_ID=%s\n' "$vpc" "$s1" "$s2" "$zone" "$ami" >"$set/network.env"
	jq -n --arg v "$vpc" --arg a "$s1" --arg b "$s2" --arg z "$zone" --arg i "$ami" \
		'{vpc_id:$v, subnet_1:$a, subnet_2:$b, zone_id:$z, ami_id:$i}' >"$set/network.json"
	"$TAPESTRY" validate "$set" >/dev/null
}

RUNS="$W/runs.jsonl"
: >"$RUNS"
measure() { # TOOL PHASE ROUND SET cmd... : time one run, count what moto saw, keep its output
	local tool=$1 phase=$2 round=$3 set=$4 l0 r0 l1 r1 out changed calls timing
	shift 4
	out="$W/$tool-$phase-$round.out"
	settle
	l0=$(log_count) r0=$(rec_count)
	timing=$("$PY" "$HERE/compare.py" time "$out" "$@")
	if [ "$(jq -r .rc <<<"$timing")" != 0 ]; then
		echo "compare: $tool $phase (round $round) failed:" >&2
		tail -n 30 "$out" >&2
		exit 1
	fi
	settle
	l1=$(log_count) r1=$(rec_count)
	calls=$("$PY" "$HERE/compare.py" calls "$LOG" "$l0" "$l1" "$REC" "$r0" "$r1")
	case "$tool" in
	ansible) changed=$(grep -oE 'changed=[0-9]+' "$out" | tail -n 1 | cut -d= -f2) ;;
	tapestry) changed=$(grep -E '^(Apply complete!|No changes)' "$out" | tail -n 1) ;;
	*) changed="" ;;
	esac
	jq -nc --arg tool "$tool" --arg phase "$phase" --argjson round "$round" \
		--argjson timing "$timing" \
		--arg changed "$changed" --argjson calls "$calls" \
		--argjson set "$(jq -c '.' "$set/network.json")" \
		'{tool:$tool, phase:$phase, round:$round} + ($timing | del(.rc)) + $calls +
		 {changed:(if $changed == "" then null elif ($changed | test("^[0-9]+$")) then ($changed | tonumber) else $changed end),
		  managed_set:{stacks:2, parameters:14, network:$set}}' >>"$RUNS"
	tail -n 1 "$RUNS" | jq -r '"  \(.tool) \(.phase) (round \(.round)): \(.wall_s) s (cpu \(.cpu_s) s), \(.calls) calls (\(.writes) writes, \(.errors) errors)" + (if .changed != null then ", changed: \(.changed)" else "" end)'
}
verify() { # TOOL ROUND SET : the whole set live and equal, or stop
	local v="$W/$1-verify-$2.json"
	"$PY" "$HERE/compare.py" verify "$EP" "$3" >"$v"
	if [ "$(jq -r .ok "$v")" != true ]; then
		echo "compare: $1 (round $2) did not build the managed set:" >&2
		jq -r '.problems[]' "$v" >&2
		exit 1
	fi
	# every run of that tool and round is marked with what was verified afterwards
	jq -c --slurpfile v "$v" 'if .tool == "'"$1"'" and .round == '"$2"' then . + {verified:true, parameter_versions:$v[0].parameter_versions, live:{stacks:$v[0].stacks}} else . end' "$RUNS" >"$RUNS.tmp"
	mv "$RUNS.tmp" "$RUNS"
	jq -r '"  verified: \(.stacks | length) stacks (\(.stacks | to_entries | map("\(.key) \(.value.status), \(.value.resources) resources, \(.value.outputs) outputs") | join("; "))), \(.parameters | length) parameters (versions \(.parameter_versions))"' "$v"
}

export TAPESTRY_ENDPOINT_AWS="$EP"
TOOLS=(tapestry imperative ansible)
for round in $(seq 1 "$ROUNDS"); do
	# each round starts with a different tool, so a busy spell of a shared machine is spread
	for k in 0 1 2; do
		tool=${TOOLS[$(((round - 1 + k) % 3))]}
		echo "== round $round/$ROUNDS: $tool"
		set_dir="$W/set-$tool-$round"
		fresh_account "$set_dir"
		case "$tool" in
		tapestry) cmd=("$TAPESTRY" apply "$set_dir" --state "$W/state-$round.db" --auto-approve) ;;
		imperative) cmd=(bash "$HERE/imperative.sh" "$EP" "$set_dir") ;;
		ansible) # moto_compat/: the one field moto leaves out that the module needs
			cmd=(env PYTHONPATH="$HERE/moto_compat" PYTHONDONTWRITEBYTECODE=1 /usr/bin/ansible-playbook -i "localhost," -c local
				"$HERE/playbook.yml" -e "endpoint=$EP" -e "set_dir=$set_dir" -e "@$set_dir/network.json") ;;
		esac
		measure "$tool" cold "$round" "$set_dir" "${cmd[@]}"
		measure "$tool" noop "$round" "$set_dir" "${cmd[@]}"
		verify "$tool" "$round" "$set_dir"
	done
done

mkdir -p "$(dirname "$OUT")"
jq --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --arg cpus "$(nproc)" --arg l0 "$LOAD0" --arg l1 "$(cut -d' ' -f1-3 /proc/loadavg)" \
	'{versions: ., machine: {date: $date, cpus: ($cpus | tonumber), loadavg_at_start: $l0, loadavg_at_end: $l1}}' \
	"$VERSIONS" >"$VERSIONS.tmp"
mv "$VERSIONS.tmp" "$VERSIONS"
echo
"$PY" "$HERE/compare.py" report "$RUNS" "$VERSIONS" "$OUT"
echo "wrote $OUT"
