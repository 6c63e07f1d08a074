#!/usr/bin/env bash
# Installs the Tapestry controller on a Debian 12 host (or any systemd Linux with the same
# libraries), idempotently: a second run changes nothing and says so; a run with a new binary
# replaces it and restarts the service.
#
#   <prefix>/bin/tapestry                         the program
#   <prefix>/share/tapestry/examples/             the kickstart pipeline (tapestry init --kickstart)
#   <prefix>/share/tapestry/deploy/               this directory (unit, template, docs)
#   /etc/systemd/system/tapestry.service          the hardened unit (ExecStart under <prefix>)
#   /etc/tapestry/                                root:tapestry 0750: controller.yaml, secrets
#   /var/lib/tapestry/                            tapestry:tapestry 0700: state and Git mirror
#   user and group `tapestry`                     a system account that logs in nowhere
#
# usage: install.sh [--from DIR] [--binary FILE] [--prefix DIR] [--config FILE]
#                   [--root DIR] [--no-deps] [--no-start]
#   --from DIR     what to install from: an unpacked release (bin/tapestry, share/tapestry/)
#                  or a source tree with a build (build/tapestry, examples/, deploy/).
#                  Default: the release or source tree this script belongs to.
#   --binary FILE  the tapestry binary (default: DIR/bin/tapestry or DIR/build/tapestry)
#   --prefix DIR   default /usr/local
#   --config FILE  install FILE as /etc/tapestry/controller.yaml (replacing it when it
#                  differs). Without it an existing controller.yaml is kept, and the example
#                  is installed as controller.yaml.example.
#   --root DIR     install below DIR (a staging tree, an image being built): no account is
#                  created, nothing is chowned, systemd and apt are left alone
#   --no-deps      do not install missing shared libraries with apt-get
#   --no-start     enable the unit but do not (re)start it
set -euo pipefail

from='' binary='' prefix=/usr/local config='' root='' deps=1 start=1
while [ $# -gt 0 ]; do
  case $1 in
    --from) from=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    --prefix) prefix=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --root) root=$2; shift 2 ;;
    --no-deps) deps=0; shift ;;
    --no-start) start=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 64 ;;
  esac
done

say() { printf 'install.sh: %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -z "$from" ]; then
  if [ -d "$here/share/tapestry" ]; then from=$here; else from=$(dirname "$here"); fi
fi
[ -d "$from" ] || die "--from $from is not a directory"
from=$(cd "$from" && pwd)
if [ -d "$from/share/tapestry/examples" ]; then
  examples=$from/share/tapestry/examples deploy=$from/share/tapestry/deploy
  : "${binary:=$from/bin/tapestry}"
else
  examples=$from/examples deploy=$from/deploy
  : "${binary:=$from/build/tapestry}"
fi
[ -x "$binary" ] || die "no tapestry binary at $binary (build it, or pass --binary FILE)"
[ -f "$examples/kickstart/tapestry.yaml" ] || die "no examples in $examples"
[ -f "$deploy/tapestry.service" ] || die "no deploy files in $deploy"
[ -z "$config" ] || [ -f "$config" ] || die "--config $config does not exist"
case $prefix in /*) ;; *) die "--prefix must be absolute" ;; esac
if [ -z "$root" ] && [ "$(id -u)" -ne 0 ]; then
  die "run as root (or use --root DIR to stage the files)"
fi
if [ -n "$root" ]; then
  mkdir -p "$root"
  root=$(cd "$root" && pwd)
  deps=0
fi

changed=()   # what this run changed, for the summary and the restart decision
restart=0

# put_file SRC DEST MODE [OWNER:GROUP]: copies when the content, mode or owner differ
put_file() {
  local src=$1 dest=$root$2 mode=$3 owner=${4:-root:root}
  local same=1
  if [ ! -f "$dest" ] || ! cmp -s "$src" "$dest"; then
    same=0
  elif [ "$(stat -c %a "$dest")" != "${mode#0}" ]; then
    same=0
  elif [ -z "$root" ] && [ "$(stat -c %U:%G "$dest")" != "$owner" ]; then
    same=0
  fi
  [ $same = 1 ] && return 1
  mkdir -p "$(dirname "$dest")"
  install -m "$mode" "$src" "$dest.tmp-install"
  [ -n "$root" ] || chown "$owner" "$dest.tmp-install"
  mv -f "$dest.tmp-install" "$dest"
  changed+=("$2")
  return 0
}

# put_dir DEST MODE OWNER:GROUP
put_dir() {
  local dest=$root$1 mode=$2 owner=$3
  if [ ! -d "$dest" ]; then
    mkdir -p "$dest"
    chmod "$mode" "$dest"
    changed+=("$1/")
  elif [ "$(stat -c %a "$dest")" != "${mode#0}" ]; then
    chmod "$mode" "$dest"
    changed+=("$1/ (mode)")
  fi
  if [ -z "$root" ] && [ "$(stat -c %U:%G "$dest")" != "$owner" ]; then
    chown "$owner" "$dest"
    changed+=("$1/ (owner)")
  fi
  return 0
}

# put_tree SRC DEST: every regular file under SRC, 0644 (directories 0755); files under DEST
# that SRC no longer has are removed
put_tree() {
  local src=$1 dest=$2 rel
  while IFS= read -r -d '' rel; do
    rel=${rel#./}
    put_file "$src/$rel" "$dest/$rel" 0644 || true
  done < <(cd "$src" && find . -type f -print0 | sort -z)
  if [ -d "$root$dest" ]; then
    while IFS= read -r -d '' rel; do
      rel=${rel#./}
      if [ ! -f "$src/$rel" ]; then
        rm -f "$root$dest/$rel"
        changed+=("$dest/$rel (removed)")
      fi
    done < <(cd "$root$dest" && find . -type f -print0 | sort -z)
  fi
  return 0
}

# ---- shared libraries the binary links
if [ $deps = 1 ]; then
  missing=$(ldd "$binary" 2>/dev/null | awk '/not found/ {print $1}' || true)
  if [ -n "$missing" ]; then
    command -v apt-get >/dev/null || die "missing libraries ($missing) and no apt-get to install them"
    say "installing the libraries tapestry needs (missing: $(echo "$missing" | tr '\n' ' '))"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends ca-certificates libgit2-1.5 libcurl4 \
      libjansson4 libyaml-0-2 libssl3 libsqlite3-0 libexpat1 libmicrohttpd12
    changed+=("shared libraries")
  fi
fi

# ---- the account
if [ -z "$root" ] && ! getent passwd tapestry >/dev/null; then
  useradd --system --user-group --home-dir /var/lib/tapestry --no-create-home \
    --shell /usr/sbin/nologin --comment "Tapestry controller" tapestry
  changed+=("user tapestry")
fi

# ---- files
put_dir /etc/tapestry 0750 root:tapestry
put_dir /var/lib/tapestry 0700 tapestry:tapestry
if put_file "$binary" "$prefix/bin/tapestry" 0755; then restart=1; fi
put_tree "$examples" "$prefix/share/tapestry/examples"
put_tree "$deploy" "$prefix/share/tapestry/deploy"

unit=$(mktemp)
trap 'rm -f "$unit"' EXIT
sed -e "s|/usr/local/bin/tapestry|$prefix/bin/tapestry|g" \
    -e "s|/usr/local/share/tapestry|$prefix/share/tapestry|g" "$deploy/tapestry.service" >"$unit"
unit_changed=0
if put_file "$unit" /etc/systemd/system/tapestry.service 0644; then unit_changed=1 restart=1; fi

put_file "$deploy/controller.yaml" /etc/tapestry/controller.yaml.example 0640 root:tapestry || true
if [ -n "$config" ]; then
  if put_file "$config" /etc/tapestry/controller.yaml 0640 root:tapestry; then restart=1; fi
fi

# ---- systemd
if [ -z "$root" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  [ $unit_changed = 1 ] && systemctl daemon-reload
  if ! systemctl is-enabled --quiet tapestry 2>/dev/null; then
    systemctl enable --quiet tapestry
    changed+=("enabled tapestry.service")
  fi
  if [ $start = 1 ] && [ -f /etc/tapestry/controller.yaml ]; then
    if [ $restart = 1 ] && systemctl is-active --quiet tapestry; then
      systemctl restart tapestry
      changed+=("restarted tapestry.service")
    elif ! systemctl is-active --quiet tapestry; then
      systemctl start --no-block tapestry
      changed+=("started tapestry.service")
    fi
  fi
elif [ -z "$root" ]; then
  say "systemd is not running here: start it yourself with $prefix/bin/tapestry run --config /etc/tapestry/controller.yaml"
fi

# ---- summary
if [ ${#changed[@]} -eq 0 ]; then
  say "nothing changed: Tapestry $("$root$prefix/bin/tapestry" version 2>/dev/null | head -n 1 | cut -d' ' -f2) is installed as it should be"
else
  say "changed ${#changed[@]}:"
  printf '  %s\n' "${changed[@]}"
fi
if [ ! -f "$root/etc/tapestry/controller.yaml" ]; then
  say "next: write /etc/tapestry/controller.yaml (see controller.yaml.example beside it) and its secret files (root:tapestry, 0640), then: systemctl start tapestry"
fi
