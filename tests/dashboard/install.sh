#!/usr/bin/env bash
# Installs what the dashboard's end-to-end test (test_dashboard.c) needs on Debian 12, and
# nothing else: Debian's Chromium (the browser is never downloaded by a test tool), Node.js and
# npm when the machine has none, and playwright-core as pinned by package-lock.json, installed
# into a cache directory outside the repository (TAPESTRY_DASHBOARD_NODE_DIR, default
# ~/.cache/tapestry/dashboard-test). Idempotent: does nothing when all of it is in place.
# Run as root or as a user with sudo.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
dir="${TAPESTRY_DASHBOARD_NODE_DIR:-$HOME/.cache/tapestry/dashboard-test}"

sudo_cmd=()
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
  sudo_cmd=(sudo)
fi

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "dashboard test: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ -f "$dir/node_modules/playwright-core/package.json" ] &&
  cmp -s "$here/package-lock.json" "$dir/package-lock.json"; then
  echo "dashboard test: playwright-core present in $dir"
  exit 0
fi
echo "dashboard test: installing playwright-core into $dir"
mkdir -p "$dir"
cp "$here/package.json" "$here/package-lock.json" "$dir/"
# playwright-core has no install step and downloads nothing; the variable is belt and braces
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error
