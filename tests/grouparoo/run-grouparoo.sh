#!/usr/bin/env bash
# The real Grouparoo 0.9.0 for the Grouparoo reconciler tests (tests/reconcilers/grouparoo/).
#
# Installs @grouparoo/core and its plugins from the npm registry exactly as package-lock.json
# beside this script pins them, into a cache directory outside the repository that is keyed
# by the lock file, so the slow install (sqlite3 builds from source) happens once and is
# reused while the lock file is unchanged. Then runs the server on 127.0.0.1 with a SQLite
# database, the mock Redis, telemetry off, and an API key written into a code-config file.
#
#   run-grouparoo.sh install               install once (serialised by a lock); print the dir
#   run-grouparoo.sh start DATA_DIR PORT   start in the background in its own process group,
#                                          wait until /api/v1/status/public answers, print PID
#   run-grouparoo.sh exec DATA_DIR PORT    become the server (what `start` runs; the C test
#                                          suites run this so the PID they stop is the server)
#   run-grouparoo.sh stop DATA_DIR         stop what `start` started (the whole process group)
#
# The API key comes from GROUPAROO_API_KEY (letters, digits, '-' and '_'), never from argv.
# DATA_DIR holds grouparoo.sqlite, config/ (api_key.json plus any code-config files put there
# before the start: those objects are locked, "config:code"), grouparoo.log, grouparoo.pid.
# The cache lives in $TAPESTRY_GROUPAROO_CACHE, else ${XDG_CACHE_HOME:-$HOME/.cache}/tapestry-grouparoo.
#
# Never call /api/v1/config/validate or /config/apply on this server: they spawn the
# Grouparoo CLI, which is not installed, and the uncaught error kills the server.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NODE_HINT="install Node.js (16 or newer) and npm: on Debian 12 \`apt-get install -y nodejs npm\`"

die() {
	echo "run-grouparoo: $*" >&2
	exit 1
}

need_node() {
	command -v node >/dev/null 2>&1 || die "node is missing: $NODE_HINT"
	command -v npm >/dev/null 2>&1 || die "npm is missing: $NODE_HINT"
	local major
	major="$(node -p 'process.versions.node.split(".")[0]')"
	[ "$major" -ge 16 ] || die "node $(node --version) is too old for Grouparoo 0.9: $NODE_HINT"
}

install_dir() {
	local base="${TAPESTRY_GROUPAROO_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tapestry-grouparoo}"
	local key
	key="$(cat "$here/package.json" "$here/package-lock.json" | sha256sum | cut -c1-16)"
	echo "$base/$key"
}

cmd_install() {
	need_node
	command -v flock >/dev/null 2>&1 || die "flock is missing (Debian package util-linux)"
	local dir
	dir="$(install_dir)"
	mkdir -p "$(dirname "$dir")"
	# one installer at a time (test suites may start together); the others wait, then reuse
	exec 9>"$dir.lock"
	flock -w 1500 9 || die "timed out waiting for another install of $dir"
	if [ ! -f "$dir/.installed" ]; then
		echo "run-grouparoo: installing Grouparoo 0.9.0 into $dir (once; a few minutes)" >&2
		rm -rf "$dir"
		mkdir -p "$dir"
		cp "$here/package.json" "$here/package-lock.json" "$dir/"
		# sqlite3 has no prebuilt binary for this Node: it builds against the local headers
		# (Debian's nodejs ships them in /usr/include/node) instead of downloading them
		if [ -f /usr/include/node/node.h ]; then
			export npm_config_nodedir=/usr
		fi
		if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >"$dir.install.log" 2>&1); then
			tail -n 40 "$dir.install.log" >&2 || true
			rm -rf "$dir"
			die "npm ci failed (log: $dir.install.log)"
		fi
		if ! (cd "$dir" && node -e 'require("sqlite3")' >>"$dir.install.log" 2>&1); then
			tail -n 20 "$dir.install.log" >&2 || true
			rm -rf "$dir"
			die "the sqlite3 module did not build (log: $dir.install.log); a C++ compiler, make and python3 are needed"
		fi
		touch "$dir/.installed"
	fi
	exec 9>&- # release the lock: the server this shell may become must not hold it
	echo "$dir"
}

check_args() {
	[ $# -ge 2 ] || die "usage: $0 exec|start DATA_DIR PORT"
	case "$2" in '' | *[!0-9]*) die "PORT must be a number, got \"$2\"" ;; esac
	[ -n "${GROUPAROO_API_KEY:-}" ] || die "set GROUPAROO_API_KEY to the API key the server should accept"
	case "$GROUPAROO_API_KEY" in
	*[!A-Za-z0-9_-]*) die "GROUPAROO_API_KEY may hold only letters, digits, '-' and '_'" ;;
	esac
}

cmd_exec() {
	check_args "$@"
	local data port dir
	data="$(cd "$1" && pwd)"
	port="$2"
	dir="$(cmd_install)"
	mkdir -p "$data/config"
	sed "s/@API_KEY@/$GROUPAROO_API_KEY/" "$here/api_key.json.in" >"$data/config/api_key.json"
	chmod 600 "$data/config/api_key.json"
	unset INIT_CWD GROUPAROO_API_KEY
	export NODE_ENV=development
	export PORT="$port"
	export WEB_SERVER=true
	export WORKERS=1
	export SERVER_TOKEN="tapestry-test-$RANDOM$RANDOM"
	export REDIS_URL=redis://mock
	export DATABASE_URL="sqlite://$data/grouparoo.sqlite"
	export GROUPAROO_TELEMETRY_ENABLED=false
	export GROUPAROO_CONFIG_DIR="$data/config"
	export GROUPAROO_PARENT_PATH="$dir"
	export ACTIONHERO_CONFIG_OVERRIDES='{"web":{"bindIP":"127.0.0.1"}}'
	exec "$dir/node_modules/@grouparoo/core/bin/start"
}

cmd_start() {
	check_args "$@"
	local data="$1" port="$2" pid
	(cmd_install) >/dev/null
	mkdir -p "$data"
	setsid "$0" exec "$data" "$port" >"$data/grouparoo.log" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$data/grouparoo.pid"
	if ! node -e '
		const http = require("http");
		const [port, pid] = [process.argv[1], Number(process.argv[2])];
		const deadline = Date.now() + 180000;
		function alive() { try { process.kill(pid, 0); return true; } catch (e) { return false; } }
		function poll() {
			if (!alive()) { console.error("the server exited during start"); process.exit(1); }
			if (Date.now() > deadline) { console.error("not ready within 180 s"); process.exit(1); }
			http.get({host: "127.0.0.1", port, path: "/api/v1/status/public", timeout: 2000}, (res) => {
				let body = "";
				res.on("data", (c) => (body += c));
				res.on("end", () => (/"ok"/.test(body) ? process.exit(0) : setTimeout(poll, 250)));
			}).on("error", () => setTimeout(poll, 250));
		}
		poll();' "$port" "$pid"; then
		tail -n 40 "$data/grouparoo.log" >&2 || true
		cmd_stop "$data"
		die "Grouparoo did not start (log: $data/grouparoo.log)"
	fi
	echo "$pid"
}

cmd_stop() {
	[ $# -ge 1 ] || die "usage: $0 stop DATA_DIR"
	local pidfile="$1/grouparoo.pid" pid
	[ -f "$pidfile" ] || return 0
	pid="$(cat "$pidfile")"
	case "$pid" in '' | *[!0-9]*) die "bad PID file $pidfile" ;; esac
	kill -TERM -- "-$pid" 2>/dev/null || true
	for _ in $(seq 1 75); do
		kill -0 -- "-$pid" 2>/dev/null || break
		sleep 0.2
	done
	kill -KILL -- "-$pid" 2>/dev/null || true
	rm -f "$pidfile"
}

case "${1:-}" in
install) cmd_install ;;
exec) shift && cmd_exec "$@" ;;
start) shift && cmd_start "$@" ;;
stop) shift && cmd_stop "$@" ;;
*) die "usage: $0 install | start DATA_DIR PORT | exec DATA_DIR PORT | stop DATA_DIR" ;;
esac
