#!/usr/bin/env bash
# The embedded stack: the local backends the kickstart pipeline runs against, and the
# pipeline's Git repository. Used by the demo (scripts/demo.sh), the dashboard's end-to-end
# test and the reliability harnesses in bench/, so that all of them run the same pipeline on
# the same servers.
#
#   stack.sh up DIR [--build BUILD_DIR] [--grouparoo required|optional|off]
#   stack.sh down DIR
#
# `up` starts, each on a free port of 127.0.0.1 and in its own process group: moto_server
# (AWS), tests/fakes/snowflake and tests/fakes/airbyte (from BUILD_DIR, default build/), and the
# real Grouparoo 0.9 from npm (tests/grouparoo/run-grouparoo.sh; "optional" skips it with a
# reason when Node.js or the npm registry is missing, "required" fails instead). It creates
# in moto what the pipeline expects to exist before it (a VPC, two subnets, a hosted zone, the
# Airbyte application's credentials in SSM), makes DIR/rainshield-pipeline from
# examples/kickstart plus the demo overlay (overlay.py) with one first commit on main, and
# writes DIR/stack.env: shell `export` lines with the ports, the PIDs, the endpoints
# (TAPESTRY_ENDPOINT_*), the secrets the pipeline reads from the environment and the AWS
# credentials, for `source`. Extra arguments for the fakes (latency, faults) come from
# STACK_SNOWFLAKE_ARGS and STACK_AIRBYTE_ARGS. On failure everything started is stopped.
#
# `down` stops what `up` started (by PID) and leaves DIR in place.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

die() {
	echo "stack: $*" >&2
	exit 1
}
say() { echo "stack: $*" >&2; }

q() { printf '%q' "$1"; }

cmd_down() {
	local dir="$1" pids="" grdata=""
	[ -f "$dir/stack.env" ] || [ -f "$dir/stack.pids" ] || return 0
	[ -f "$dir/stack.pids" ] && pids="$(cat "$dir/stack.pids")"
	[ -f "$dir/stack.grouparoo" ] && grdata="$(cat "$dir/stack.grouparoo")"
	if [ -n "$grdata" ]; then
		bash "$ROOT/tests/grouparoo/run-grouparoo.sh" stop "$grdata" >/dev/null 2>&1 || true
	fi
	local p
	for p in $pids; do kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true; done
	for _ in $(seq 1 50); do
		local alive=0
		for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ "$alive" = 0 ] && break
		sleep 0.1
	done
	for p in $pids; do kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true; done
	rm -f "$dir/stack.pids" "$dir/stack.grouparoo"
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

cmd_up() {
	local dir="$1"
	shift
	local build="$ROOT/build" grmode=optional
	while [ $# -gt 0 ]; do
		case "$1" in
		--build) build="$(cd "$2" && pwd)"; shift 2 ;;
		--grouparoo) grmode="$2"; shift 2 ;;
		*) die "unknown argument $1" ;;
		esac
	done
	case "$grmode" in required | optional | off) ;; *) die "--grouparoo required|optional|off" ;; esac
	mkdir -p "$dir"
	dir="$(cd "$dir" && pwd)"
	[ ! -f "$dir/stack.pids" ] || die "$dir already holds a running stack (stack.sh down $dir first)"
	for t in python3 openssl jq curl git sqlite3; do
		command -v "$t" >/dev/null 2>&1 || die "$t is missing (bash scripts/install-deps.sh)"
	done
	command -v moto_server >/dev/null 2>&1 || die "moto_server is required: pip install 'moto[server]'"
	for f in fake_snowflake fake_airbyte; do
		[ -x "$build/$f" ] || die "$build/$f is missing (cmake --build $build --target $f)"
	done
	: >"$dir/stack.pids"
	UP_DIR="$dir"
	trap 'if [ $? -ne 0 ]; then cmd_down "$UP_DIR"; fi' EXIT

	local last_pid
	start_bg() { # LOG cmd... : own process group, PID recorded
		local log="$1"
		shift
		setsid "$@" >"$log" 2>&1 </dev/null &
		last_pid=$!
		echo "$last_pid" >>"$dir/stack.pids"
	}
	wait_port() { # PORT NAME LOG PID
		for _ in $(seq 1 300); do
			(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
			kill -0 "$4" 2>/dev/null || { tail -n 20 "$3" >&2; die "$2 exited at start"; }
			sleep 0.1
		done
		tail -n 20 "$3" >&2
		die "$2 did not listen on 127.0.0.1:$1 within 30 s"
	}

	local aws_port sf_port ab_port gr_port="" grouparoo=0 gr_why="" gr_data=""
	aws_port=$(free_port)
	start_bg "$dir/moto.log" env -u AWS_ENDPOINT_URL moto_server -H 127.0.0.1 -p "$aws_port"
	wait_port "$aws_port" moto_server "$dir/moto.log" "$last_pid"
	say "AWS        moto_server           http://127.0.0.1:$aws_port"

	mkdir -p "$dir/keys" && chmod 700 "$dir/keys"
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/keys/snowflake_key.p8" 2>/dev/null
	openssl pkey -in "$dir/keys/snowflake_key.p8" -pubout -out "$dir/keys/snowflake_key.pub" 2>/dev/null
	openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/keys/airbyte_user_key.p8" 2>/dev/null
	sf_port=$(free_port)
	# shellcheck disable=SC2086
	start_bg "$dir/snowflake.log" "$build/fake_snowflake" --port "$sf_port" \
		--account RAINSHIELD-ANALYTICS --user TAPESTRY --public-key "$dir/keys/snowflake_key.pub" \
		--role TAPESTRY_ADMIN --log "$dir/snowflake-requests.log" ${STACK_SNOWFLAKE_ARGS:-}
	wait_port "$sf_port" fake_snowflake "$dir/snowflake.log" "$last_pid"
	say "Snowflake  tests/fakes/snowflake http://127.0.0.1:$sf_port (SQL API v2, key-pair JWT)"

	local ab_id="demo-airbyte-app" ab_secret
	ab_secret="demo-airbyte-secret-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
	ab_port=$(free_port)
	# shellcheck disable=SC2086
	start_bg "$dir/airbyte.log" "$build/fake_airbyte" --port "$ab_port" \
		--client-id "$ab_id" --client-secret "$ab_secret" --log "$dir/airbyte-requests.log" \
		${STACK_AIRBYTE_ARGS:-}
	wait_port "$ab_port" fake_airbyte "$dir/airbyte.log" "$last_pid"
	say "Airbyte    tests/fakes/airbyte   http://127.0.0.1:$ab_port/api/public/v1"

	local gr_key
	gr_key="demo_$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
	if [ "$grmode" != off ]; then
		grouparoo=1
		local cache
		cache="${TAPESTRY_GROUPAROO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tapestry-grouparoo}/$(cat "$ROOT/tests/grouparoo/package.json" "$ROOT/tests/grouparoo/package-lock.json" | sha256sum | cut -c1-16)"
		if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
			grouparoo=0 gr_why="Node.js/npm are not installed (apt-get install nodejs npm libnode-dev)"
		elif [ ! -f "$cache/.installed" ] && ! timeout 20 npm ping >/dev/null 2>&1; then
			grouparoo=0 gr_why="the npm registry ($(npm config get registry 2>/dev/null)) is unreachable, so Grouparoo 0.9 cannot be installed (npm ping failed)"
		elif [ ! -f "$cache/.installed" ] && say "installing Grouparoo 0.9 from npm into $cache (once; a few minutes)" &&
			! timeout 900 bash "$ROOT/tests/grouparoo/run-grouparoo.sh" install >"$dir/grouparoo-install.log" 2>&1; then
			grouparoo=0 gr_why="npm could not install Grouparoo 0.9: $(tail -n 1 "$dir/grouparoo-install.log")"
		fi
		if [ "$grouparoo" = 1 ]; then
			gr_port=$(free_port)
			gr_data="$dir/grouparoo"
			echo "$gr_data" >"$dir/stack.grouparoo"
			if ! GROUPAROO_API_KEY="$gr_key" bash "$ROOT/tests/grouparoo/run-grouparoo.sh" start "$gr_data" "$gr_port" >"$dir/grouparoo-start.log" 2>&1; then
				grouparoo=0 gr_why="Grouparoo did not start: $(tail -n 1 "$dir/grouparoo-start.log")"
				cp "$gr_data/grouparoo.log" "$dir/grouparoo.log" 2>/dev/null || true
				rm -f "$dir/stack.grouparoo"
				gr_data="" gr_port=""
			elif ! curl -sf -m 10 -H "Authorization: Bearer $gr_key" "http://127.0.0.1:$gr_port/api/v1/apps" >/dev/null; then
				# the port was free when picked; another server may have taken it since
				grouparoo=0 gr_why="the server on 127.0.0.1:$gr_port does not accept this stack's API key (port taken by another process?)"
				bash "$ROOT/tests/grouparoo/run-grouparoo.sh" stop "$gr_data" >/dev/null 2>&1 || true
				rm -f "$dir/stack.grouparoo"
				gr_data="" gr_port=""
			else
				say "Grouparoo  the real 0.9.0 (npm)  http://127.0.0.1:$gr_port"
			fi
		fi
		[ "$grouparoo" = 1 ] || [ "$grmode" != required ] || die "Grouparoo is required: $gr_why"
	else
		gr_why="left out (--grouparoo off)"
	fi

	# ---- AWS bootstrap: unsigned calls (moto is not enforcing signatures)
	export AWS_ACCESS_KEY_ID=AKIADEMODEMODEMO0000 AWS_SECRET_ACCESS_KEY=demo-secret AWS_REGION=us-east-1
	local auth="Authorization: AWS4-HMAC-SHA256 Credential=$AWS_ACCESS_KEY_ID/20260101/us-east-1"
	aws_query() { curl -sf "http://127.0.0.1:$aws_port/" -H "$auth/$1/aws4_request, SignedHeaders=host, Signature=0" --data "$2"; }
	xml() { grep -o "<$1>[^<]*" | head -n 1 | sed "s:<$1>::"; }
	local vpc s1 s2 zone
	vpc=$(aws_query ec2 "Action=CreateVpc&CidrBlock=10.0.0.0/16&Version=2016-11-15" | xml vpcId)
	s1=$(aws_query ec2 "Action=CreateSubnet&VpcId=$vpc&CidrBlock=10.0.1.0/24&AvailabilityZone=us-east-1a&Version=2016-11-15" | xml subnetId)
	s2=$(aws_query ec2 "Action=CreateSubnet&VpcId=$vpc&CidrBlock=10.0.2.0/24&AvailabilityZone=us-east-1b&Version=2016-11-15" | xml subnetId)
	zone=$(curl -sf "http://127.0.0.1:$aws_port/2013-04-01/hostedzone" -H 'Content-Type: application/xml' \
		-H "$auth/route53/aws4_request, SignedHeaders=host, Signature=0" \
		--data "<CreateHostedZoneRequest xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><Name>internal.</Name><CallerReference>stack-$RANDOM</CallerReference></CreateHostedZoneRequest>" |
		xml Id | sed 's:.*/::')
	{ [ -n "$vpc" ] && [ -n "$s1" ] && [ -n "$s2" ] && [ -n "$zone" ]; } || die "could not create the VPC, subnets and hosted zone in moto"
	local kv
	for kv in "client_id:$ab_id" "client_secret:$ab_secret"; do
		curl -sf "http://127.0.0.1:$aws_port/" -H "X-Amz-Target: AmazonSSM.PutParameter" -H 'Content-Type: application/x-amz-json-1.1' \
			-H "$auth/ssm/aws4_request, SignedHeaders=host, Signature=0" \
			--data "$(jq -nc --arg n "/rainshield/airbyte/${kv%%:*}" --arg v "${kv#*:}" '{Name:$n,Value:$v,Type:"SecureString"}')" >/dev/null ||
			die "could not store the Airbyte credentials in moto's SSM"
	done

	# ---- the repository
	local repo="$dir/rainshield-pipeline" wfile="-"
	rm -rf "$repo"
	cp -r "$ROOT/examples/kickstart" "$repo"
	if [ "$grouparoo" = 1 ]; then
		wfile="$dir/warehouse.sqlite"
		rm -f "$wfile"
		sqlite3 "$wfile" <<'SQL'
CREATE TABLE EMAIL_MODEL (EMAIL TEXT PRIMARY KEY, FIRST_NAME TEXT, LAST_NAME TEXT, UPDATED_AT TEXT);
INSERT INTO EMAIL_MODEL VALUES
 ('diana.prince@example.com', 'Diana', 'Prince', '2026-01-01 06:00:00'),
 ('barry.allen@example.com', 'Barry', 'Allen', '2026-01-01 06:00:00'),
 ('betty.rubble@example.com', 'Betty', 'Rubble', '2026-01-01 06:00:00'),
 ('jack.rogers@example.com', 'Jack', 'Rogers', '2026-01-01 06:00:00');
CREATE TABLE MAILCHIMP_AUDIENCE (email_address TEXT PRIMARY KEY, FNAME TEXT, LNAME TEXT);
CREATE TABLE MAILCHIMP_TAGS (email_address TEXT, tag TEXT);
SQL
	fi
	python3 "$ROOT/scripts/demo/overlay.py" "$repo" "$vpc" "$s1" "$s2" "$zone" "$dir/keys" "$wfile" >&2
	git -C "$repo" init -q -b main
	git -C "$repo" add -A
	GIT_AUTHOR_NAME="Rainshield Data" GIT_AUTHOR_EMAIL=data@rainshield.example \
		GIT_COMMITTER_NAME="Rainshield Data" GIT_COMMITTER_EMAIL=data@rainshield.example \
		git -C "$repo" commit -q -m "Rainshield pipeline: infrastructure, warehouse, ingestion, transformation${gr_port:+, syncing}"

	# ---- stack.env
	{
		echo "# written by scripts/demo/stack.sh up; stop with: bash scripts/demo/stack.sh down $(q "$dir")"
		echo "export STACK_DIR=$(q "$dir") STACK_REPO=$(q "$repo")"
		echo "export AWS_PORT=$aws_port SF_PORT=$sf_port AB_PORT=$ab_port GR_PORT=$(q "$gr_port")"
		echo "export GROUPAROO=$grouparoo GR_WHY=$(q "$gr_why") GR_DATA=$(q "$gr_data") GR_KEY=$(q "$gr_key")"
		echo "export AB_ID=$(q "$ab_id") AB_SECRET=$(q "$ab_secret")"
		echo "export VPC=$vpc SUBNET1=$s1 SUBNET2=$s2 ZONE=$zone"
		echo "export AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY AWS_REGION=$AWS_REGION"
		echo "export TAPESTRY_ENDPOINT_AWS=http://127.0.0.1:$aws_port"
		echo "export TAPESTRY_ENDPOINT_SNOWFLAKE=http://127.0.0.1:$sf_port"
		echo "export TAPESTRY_ENDPOINT_AIRBYTE=http://127.0.0.1:$ab_port/api/public/v1"
		[ "$grouparoo" = 1 ] && echo "export TAPESTRY_ENDPOINT_GROUPAROO=http://127.0.0.1:$gr_port"
		# the secrets infrastructure.yaml copies into SSM, as the operator exports them on the host
		echo "export RAINSHIELD_STAGING_ACCESS_KEY_ID=AKIADEMOSTAGING00000 RAINSHIELD_STAGING_SECRET_ACCESS_KEY=demo-staging-secret"
		echo "export ZOOM_ACCOUNT_ID=demo-zoom-account ZOOM_CLIENT_ID=demo-zoom-client ZOOM_CLIENT_SECRET=demo-zoom-secret"
		echo "export SALESFORCE_CLIENT_ID=demo-sf-client SALESFORCE_CLIENT_SECRET=demo-sf-secret SALESFORCE_REFRESH_TOKEN=demo-sf-refresh"
		echo "export SNOWFLAKE_GROUPAROO_PASSWORD=$(q 'Demo-Grouparoo-Pa55!') MAILCHIMP_API_KEY=demo0000000000000000000000000000-us6"
		echo "export GROUPAROO_API_KEY=$(q "$gr_key") GROUPAROO_SERVER_TOKEN=demo-server-token-$RANDOM"
		echo "export STACK_PIDS=$(q "$(tr '\n' ' ' <"$dir/stack.pids")")"
	} >"$dir/stack.env"
	chmod 600 "$dir/stack.env"
	[ "$grouparoo" = 1 ] || say "Grouparoo left out: $gr_why"
	trap - EXIT
}

case "${1:-}" in
up) [ $# -ge 2 ] || die "usage: stack.sh up DIR [--build BUILD_DIR] [--grouparoo required|optional|off]"; shift; cmd_up "$@" ;;
down) [ $# -eq 2 ] || die "usage: stack.sh down DIR"; cmd_down "$2" ;;
*) die "usage: stack.sh up DIR [--build BUILD_DIR] [--grouparoo required|optional|off] | down DIR" ;;
esac
