#!/usr/bin/env bash
# The README's first command: installs the build dependencies, builds Tapestry, and runs it
# on the embedded default pipeline, examples/kickstart (the case study's Zoom + Salesforce →
# Snowflake → EMAIL_MODEL → Mailchimp pipeline). Today that shows what exists: the kinds the
# engine knows, a full validation of the example, the plan a first sync would carry out, and
# what a mistake in a commit looks like; it grows into the live demo against local servers as
# the reconcilers land.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake -S . -B build >/dev/null
cmake --build build -j "$(nproc)" --target tapestry >/dev/null

bin=build/tapestry
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
  say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
  say() { printf '\n== %s\n' "$*"; }
fi

say "tapestry version"
"$bin" version

say "the resource kinds Tapestry manages (tapestry kinds)"
"$bin" kinds

say "validating examples/kickstart (tapestry validate examples/kickstart)"
"$bin" validate examples/kickstart

say "the plan for a first sync: nothing is managed yet (tapestry plan examples/kickstart --state ...)"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
NO_COLOR=1 "$bin" plan examples/kickstart --state "$scratch/state.db" | tail -n 40
echo "(the full plan lists all $("$bin" plan examples/kickstart --state "$scratch/state.db" --format json | grep -c '"address"') resources; --format markdown renders it for a pull request)"

say "what a mistake looks like: a typo and a dangling reference, caught before anything runs"
cp -r examples/kickstart/. "$scratch/pipeline/" 2>/dev/null || { mkdir -p "$scratch/pipeline"; cp -r examples/kickstart/. "$scratch/pipeline/"; }
cat >> "$scratch/pipeline/resources/warehouse.yaml" <<'YAML'
---
kind: snowflake.warehouse
name: reporting
spec:
  name: REPORTING
  warehouse_sise: SMALL
---
kind: snowflake.grant
name: reporter-reporting
spec:
  role: ${snowflake.role/reporters.name}
  privileges: [usage]
  on: {type: warehouse, name: REPORTING}
YAML
"$bin" validate "$scratch/pipeline" || true

say "done"
echo "Next: read examples/kickstart/README.md, try \`$bin kinds aws.stack\`, and"
echo "\`$bin plan examples/kickstart --state /tmp/state.db --format markdown\`."
