#!/usr/bin/env bash
# Builds a release archive of Tapestry for deploy/install.sh and the controller host's
# CloudFormation template (its ArtifactUrl and ArtifactSha256 parameters):
#
#   dist/tapestry-<version>-linux-<arch>.tar.gz
#     tapestry-<version>/bin/tapestry
#     tapestry-<version>/share/tapestry/examples/...   (tapestry init --kickstart)
#     tapestry-<version>/share/tapestry/deploy/...     (unit, template, CI workflow, docs)
#     tapestry-<version>/install.sh
#   dist/tapestry-<version>-linux-<arch>.tar.gz.sha256
#
# usage: deploy/package.sh [--binary FILE] [--out DIR] [BUILD_DIR]
#   BUILD_DIR      configured (Release, no tests) and built here; default build-release
#   --binary FILE  package this binary instead of building one
#   --out DIR      where the archive goes (default dist/)
# Build it on the distribution the hosts run (Debian 12): the binary links its libraries.
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
binary='' out_dir=$src/dist build=$src/build-release
while [ $# -gt 0 ]; do
  case $1 in
    --binary) binary=$2; shift 2 ;;
    --out) out_dir=$2; shift 2 ;;
    -*) echo "package.sh: unknown option $1" >&2; exit 64 ;;
    *) build=$1; shift ;;
  esac
done
if [ -z "$binary" ]; then
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DTAPESTRY_TESTS=OFF >/dev/null
  cmake --build "$build" --target tapestry
  binary=$build/tapestry
fi
[ -x "$binary" ] || { echo "package.sh: $binary is not an executable" >&2; exit 1; }
version=$("$binary" version | head -n 1 | cut -d' ' -f2)
arch=$(uname -m)
name=tapestry-$version
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$name/bin" "$stage/$name/share/tapestry"
install -m 0755 "$binary" "$stage/$name/bin/tapestry"
cp -R "$src/examples" "$stage/$name/share/tapestry/examples"
cp -R "$src/deploy" "$stage/$name/share/tapestry/deploy"
install -m 0755 "$src/deploy/install.sh" "$stage/$name/install.sh"
mkdir -p "$out_dir"
out=$(cd "$out_dir" && pwd)/$name-linux-$arch.tar.gz
tar -C "$stage" --owner=0 --group=0 --numeric-owner --sort=name -czf "$out" "$name"
(cd "$(dirname "$out")" && sha256sum "$(basename "$out")" >"$(basename "$out").sha256")
echo "$out"
