#!/usr/bin/env bash
# Swagger UI of a tmf635 server binary in headless Chromium, offline: starts the binary on a
# free loopback port with a fresh SQLite database, seeds one usage, and runs
# swagger-ui.check.mjs against it (every operation listed; GET /usage "Try it out" ->
# "Execute" shows 401, then after "Authorize" with a bearer token 200 with a JSON array holding
# the seeded usage; no request leaves the server's origin). The server has authentication on
# (HS256, a secret and token made here). Needs Debian's chromium (/usr/bin/chromium, or CHROMIUM=path), node, npm,
# curl, python3.
#
#   tests/ui/run.sh <path-to-tmf635-binary>
#
# Prints PASS or FAIL last; exits 0 only on PASS. Screenshots and the server log stay in the
# temporary directory it prints.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 <path-to-tmf635-binary>" >&2
    exit 64
fi

BIN=$1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [[ ! -x "$BIN" ]]; then
    echo "run.sh: server binary not found or not executable: $BIN" >&2
    echo "FAIL: Swagger UI check (no server binary)"
    exit 66
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

if [[ ! -f "$HERE/node_modules/playwright-core/package.json" ]]; then
    echo "run.sh: installing playwright-core (npm ci) in $HERE"
    (cd "$HERE" && npm ci --no-audit --no-fund)
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tmf635-ui.XXXXXX")
SERVER_LOG="$WORK/server.log"
# shellcheck source=../lib/server.sh
source "$HERE/../lib/server.sh"

cleanup() {
    local rc=$?
    server_stop
    if [[ $rc -eq 0 ]]; then
        echo "PASS: Swagger UI check (screenshots in $WORK)"
    else
        echo "FAIL: Swagger UI check (exit $rc; server log and screenshots in $WORK)"
    fi
    exit "$rc"
}
trap cleanup EXIT

# Authentication on (HS256), so the check covers Authorize: 401 without the token, 200 with it.
SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
TOKEN=$("$HERE/../lib/hs256_token.py" "$SECRET" "usage.read usage.write")
server_start "$BIN" "sqlite://$WORK/ui.db?mode=rwc" "$SERVER_LOG" NO_COLOR=1 TMF635_AUTH_HS256_SECRET="$SECRET"

# One usage, so that the list Swagger UI shows is the server's real data.
seed=$(curl -s -w '\n%{http_code}' --max-time 10 -X POST \
    -H 'Content-Type: application/json' -H 'Accept: application/json' -H "Authorization: Bearer $TOKEN" \
    --data-binary '{"description":"Swagger UI check","usageDate":"2024-03-01T10:00:00.000Z","usageType":"VOICE","status":"received","@type":"Usage"}' \
    "$BASE_URL/usage") || true
seed_code=${seed##*$'\n'}
seed_body=${seed%$'\n'*}
if [[ "$seed_code" != 201 ]]; then
    echo "run.sh: seeding POST /usage answered ${seed_code:-nothing} (expected 201): $seed_body" >&2
    show_log
    exit 1
fi
USAGE_ID=$(printf '%s' "$seed_body" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
echo "run.sh: seeded usage $USAGE_ID"

echo "run.sh: checking Swagger UI at $ROOT/swagger-ui/ in ${CHROMIUM:-/usr/bin/chromium}"
set +e
AUTH_TOKEN="$TOKEN" EXPECT_USAGE_ID="$USAGE_ID" node "$HERE/swagger-ui.check.mjs" "$ROOT" "$WORK/swagger-ui.png"
CHECK_RC=$?
set -e
if [[ $CHECK_RC -ne 0 ]]; then
    show_log
fi
exit "$CHECK_RC"
