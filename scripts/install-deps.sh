#!/usr/bin/env bash
# Installs the Debian 12 packages Tapestry builds and tests with. Idempotent: packages that
# are already present are left alone, and apt is only consulted when something is missing.
# Run as root or as a user with sudo.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git ca-certificates
  libgit2-dev libcurl4-openssl-dev libjansson-dev libyaml-dev libssl-dev
  libsqlite3-dev sqlite3 libcriterion-dev libexpat1-dev libmicrohttpd-dev
  clang
  # the tests' own tools: real git repositories and git daemon, the deploy scripts' checks
  jq curl shellcheck systemd
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo_cmd=(sudo)
  else
    echo "install-deps: missing packages (${missing[*]}) and not root; rerun as root" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
