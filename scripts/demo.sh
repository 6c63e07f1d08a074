#!/usr/bin/env bash
# The README's first command: installs the build dependencies, builds Tapestry, and runs it
# on the embedded default pipeline, examples/kickstart (the case study's Zoom + Salesforce →
# Snowflake → EMAIL_MODEL → Mailchimp pipeline). Today that shows what exists: the kinds the
# engine knows and a full validation of the example; it grows into the live demo against local
# servers as the reconcilers land.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTAPESTRY_TESTS=OFF >/dev/null
cmake --build build -j "$(nproc)" >/dev/null

bin=build/tapestry
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "tapestry version"
"$bin" version

say "the resource kinds Tapestry manages (tapestry kinds)"
"$bin" kinds

say "validating examples/kickstart (tapestry validate examples/kickstart)"
"$bin" validate examples/kickstart

say "what a mistake looks like: a typo and a dangling reference, caught before anything runs"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -r examples/kickstart/. "$scratch/"
cat >> "$scratch/resources/warehouse.yaml" <<'YAML'
---
kind: snowflake.warehouse
name: reporting
spec:
  name: REPORTING
  warehouse_sise: SMALL
  comment: "${snowflake.role/nobody.name}"
YAML
"$bin" validate "$scratch" || true

say "done"
echo "Next: read examples/kickstart/README.md, then try \`$bin kinds aws.stack\`."
