#!/usr/bin/env bash
# Posts a Tapestry plan on a pull request as ONE comment, created the first time and edited in
# place on every later push (found by the hidden marker it starts with), so a pull request
# never collects a pile of stale plans. Used by deploy/ci/github-plan.yml; needs bash, curl
# and jq (all on GitHub's runners).
#
# usage: plan-comment.sh PLAN_MD PLAN_STDERR PLAN_STATUS
#   PLAN_MD      the markdown `tapestry plan --format markdown` printed
#   PLAN_STDERR  what it printed on stderr (shown when the plan failed)
#   PLAN_STATUS  its exit status (0: plan printed; anything else: failed or refused)
# environment:
#   GITHUB_TOKEN       token allowed to write pull-request comments (required)
#   GITHUB_REPOSITORY  owner/name (set by GitHub Actions)
#   PR_NUMBER          the pull request's number (required)
#   GITHUB_API_URL     REST API base (set by GitHub Actions; default https://api.github.com)
#   COMMENT_MARKER     identifies the comment (default <!-- tapestry-plan -->); give each
#                      pipeline its own when one repository holds several
#   PLAN_TITLE_NOTE    one line added under the plan (e.g. the commits it compares)
# Exits 0 when the comment was written, non-zero (with GitHub's message) when it was not.
set -euo pipefail

plan_md=${1:?usage: plan-comment.sh PLAN_MD PLAN_STDERR PLAN_STATUS}
plan_err=${2:?usage: plan-comment.sh PLAN_MD PLAN_STDERR PLAN_STATUS}
plan_status=${3:?usage: plan-comment.sh PLAN_MD PLAN_STDERR PLAN_STATUS}
: "${GITHUB_TOKEN:?GITHUB_TOKEN is required}"
: "${GITHUB_REPOSITORY:?GITHUB_REPOSITORY (owner/name) is required}"
: "${PR_NUMBER:?PR_NUMBER is required}"
api=${GITHUB_API_URL:-https://api.github.com}
api=${api%/}
marker=${COMMENT_MARKER:-<!-- tapestry-plan -->}
limit=60000 # GitHub refuses comment bodies over 65,536 characters

for tool in curl jq; do
  command -v "$tool" >/dev/null || { echo "plan-comment: $tool is required (apt-get install $tool)" >&2; exit 1; }
done
case $PR_NUMBER in ''|*[!0-9]*) echo "plan-comment: PR_NUMBER must be a number" >&2; exit 1 ;; esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# api METHOD PATH [JSON_FILE]: the response body on stdout; GitHub's message on failure.
api() {
  local method=$1 path=$2 data=${3:-} code
  local args=(-sS -X "$method" -o "$work/response" -w '%{http_code}'
              -H "Authorization: Bearer $GITHUB_TOKEN"
              -H "Accept: application/vnd.github+json"
              -H "X-GitHub-Api-Version: 2022-11-28")
  if [ -n "$data" ]; then
    args+=(-H "Content-Type: application/json" --data-binary "@$data")
  fi
  code=$(curl "${args[@]}" "$api$path") || { echo "plan-comment: $method $path: request failed" >&2; return 1; }
  if [ "${code:0:1}" != 2 ]; then
    echo "plan-comment: $method $path: HTTP $code: $(jq -r '.message? // empty' "$work/response" 2>/dev/null || true)" >&2
    return 1
  fi
  cat "$work/response"
}

# ---- the comment body
{
  printf '%s\n' "$marker"
  if [ "$plan_status" != 0 ]; then
    printf '### :x: Tapestry plan failed (exit status %s)\n\n' "$plan_status"
    if [ -s "$plan_err" ]; then
      printf '```\n'
      tail -c 8000 "$plan_err"
      printf '\n```\n\n'
    fi
  fi
  if [ -s "$plan_md" ]; then
    cat "$plan_md"
  elif [ "$plan_status" = 0 ]; then
    printf 'Tapestry printed no plan.\n'
  fi
  if [ -n "${PLAN_TITLE_NOTE:-}" ]; then
    printf '\n<sub>%s</sub>\n' "$PLAN_TITLE_NOTE"
  fi
} >"$work/body.md"

# Too long for one comment: keep whole <details> blocks up to the limit, then say so.
jq -Rs --argjson limit "$limit" '
  if length <= $limit then {body: .}
  else
    .[0:$limit] as $head
    | ($head | rindex("</details>")) as $cut
    | {body: ((if $cut then $head[0:$cut + 10] else $head end)
              + "\n\n**The plan is too long for a comment; the rest is in the workflow run'"'"'s log.**\n")}
  end' "$work/body.md" >"$work/payload.json"

# ---- find our comment: the first one starting with the marker (pages of 100)
existing=
page=1
while :; do
  api GET "/repos/$GITHUB_REPOSITORY/issues/$PR_NUMBER/comments?per_page=100&page=$page" >"$work/page.json"
  existing=$(jq -r --arg m "$marker" '[.[] | select(.body | startswith($m)) | .id][0] // empty' "$work/page.json")
  [ -n "$existing" ] && break
  [ "$(jq length "$work/page.json")" -lt 100 ] && break
  page=$((page + 1))
done

if [ -n "$existing" ]; then
  api PATCH "/repos/$GITHUB_REPOSITORY/issues/comments/$existing" "$work/payload.json" >"$work/out.json"
  echo "plan-comment: updated comment $existing on #$PR_NUMBER: $(jq -r '.html_url // empty' "$work/out.json")"
else
  api POST "/repos/$GITHUB_REPOSITORY/issues/$PR_NUMBER/comments" "$work/payload.json" >"$work/out.json"
  echo "plan-comment: created comment $(jq -r '.id' "$work/out.json") on #$PR_NUMBER: $(jq -r '.html_url // empty' "$work/out.json")"
fi
