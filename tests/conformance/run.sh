#!/usr/bin/env bash
# Runs the reproduction of TM Forum's CTK-Usage-4.0.0 conformance kit (newman) against a
# tmf635 server binary started here on a free loopback port.
#
#   tests/conformance/run.sh <path-to-tmf635-binary> <DATABASE_URL>
#
# e.g. tests/conformance/run.sh target/debug/tmf635 'sqlite:///tmp/ctk.db?mode=rwc'
#
# Before the kit runs, the database is seeded through the API with other rows (usages of
# varied status/usageType, usage specifications with other names, one of them named
# "Voice-Usage-Specification-old"), so the kit runs against a database that already holds
# rows, as it does at TM Forum. Exits with newman's exit code (0 = all assertions passed).
#
# With CTK_BEARER_TOKEN set (a server with authentication on), the seeding and every request
# of the kit send `Authorization: Bearer $CTK_BEARER_TOKEN` (collection-level bearer auth).
# With CTK_SEED_ONLY set, it seeds and stops (e.g. another tenant's rows before the kit runs
# as a tenant of its own).
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 <path-to-tmf635-binary> <DATABASE_URL>" >&2
    exit 64
fi

BIN=$1
DB_URL=$2
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
COLLECTION="$HERE/CTK-Usage-4.0.0.postman_collection.json"
NEWMAN="$HERE/node_modules/.bin/newman"
SEED_USAGES=${CTK_SEED_USAGES:-120}
SEED_SPECS=${CTK_SEED_SPECS:-40}

if [[ ! -x "$BIN" ]]; then
    echo "run.sh: server binary not found or not executable: $BIN" >&2
    exit 66
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

if [[ ! -x "$NEWMAN" ]]; then
    echo "run.sh: installing newman (npm ci) in $HERE"
    (cd "$HERE" && npm ci --no-audit --no-fund)
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tmf635-ctk.XXXXXX")
SERVER_LOG="$WORK/server.log"
JUNIT="$WORK/CTK-Usage-4.0.0.junit.xml"
# shellcheck source=../lib/server.sh
source "$HERE/../lib/server.sh"

cleanup() {
    local rc=$?
    server_stop
    exit "$rc"
}
trap cleanup EXIT

server_start "$BIN" "$DB_URL" "$SERVER_LOG"

AUTH_HEADER=()
if [[ -n "${CTK_BEARER_TOKEN:-}" ]]; then
    AUTH_HEADER=(-H "Authorization: Bearer $CTK_BEARER_TOKEN")
    # The kit as published, with a bearer token every request inherits.
    python3 - "$COLLECTION" "$WORK/collection.json" <<'PY'
import json, sys
collection = json.load(open(sys.argv[1]))
collection["auth"] = {"type": "bearer", "bearer": [{"key": "token", "value": "{{authToken}}", "type": "string"}]}
json.dump(collection, open(sys.argv[2], "w"))
PY
    COLLECTION="$WORK/collection.json"
fi

# --- seed the database with other rows through the API ---------------------------------
post() { # post <resource> <json>
    local out code
    out=$(curl -s -w '\n%{http_code}' --max-time 10 -X POST \
        -H 'Content-Type: application/json' -H 'Accept: application/json' "${AUTH_HEADER[@]}" \
        --data-binary "$2" "$BASE_URL/$1") || true
    code=${out##*$'\n'}
    if [[ "$code" != 201 ]]; then
        echo "run.sh: seeding POST /$1 answered ${code:-nothing} (expected 201): ${out%$'\n'*}" >&2
        echo "run.sh: body sent: $2" >&2
        show_log
        exit 1
    fi
}

STATUSES=(received rejected recycled guided rated rerated billed)
TYPES=(VOICE DATA SMS MMS ROAMING_DATA)
echo "run.sh: seeding $SEED_USAGES usages and $SEED_SPECS usage specifications"
for i in $(seq 1 "$SEED_USAGES"); do
    st=${STATUSES[$((i % ${#STATUSES[@]}))]}
    ty=${TYPES[$((i % ${#TYPES[@]}))]}
    day=$(printf '%02d' $((i % 28 + 1)))
    post usage "$(cat <<EOF
{"description":"Seed usage $i ($ty)","usageDate":"2024-03-${day}T10:$(printf '%02d' $((i % 60))):00.000Z","usageType":"$ty","status":"$st",
 "usageCharacteristic":[{"name":"quantity","valueType":"integer","value":$((i * 7))},{"name":"unit","valueType":"string","value":"UNIT"}],
 "relatedParty":[{"id":"seed-party-$((i % 9))","name":"Seed Customer $((i % 9))","role":"customer","@referredType":"Individual"}],
 "usageSpecification":{"id":"seed-spec-$((i % 5))","href":"$BASE_URL/usageSpecification/seed-spec-$((i % 5))","name":"Seed-${ty}-Specification"},
 "@type":"Usage"}
EOF
)"
done
for i in $(seq 1 "$SEED_SPECS"); do
    if [[ $i -eq 1 ]]; then name="Voice-Usage-Specification-old"; else name="Seed-Usage-Specification-$i"; fi
    post usageSpecification "$(cat <<EOF
{"name":"$name","description":"Seed usage specification $i","lifecycleStatus":"$([[ $((i % 3)) -eq 0 ]] && echo Retired || echo Active)",
 "version":"$((i % 4)).0","isBundle":false,"validFor":{"startDateTime":"2023-01-01T00:00:00.000Z","endDateTime":"2029-12-31T23:59:59.000Z"},
 "specCharacteristic":[{"name":"volume","valueType":"integer","configurable":false,"minCardinality":0,"maxCardinality":1}],
 "@type":"UsageSpecification"}
EOF
)"
done

if [[ -n "${CTK_SEED_ONLY:-}" ]]; then
    echo "run.sh: seeded only (CTK_SEED_ONLY)"
    exit 0
fi

# --- the kit ------------------------------------------------------------------------------
echo "run.sh: running CTK-Usage-4.0.0 against $BASE_URL"
set +e
"$NEWMAN" run "$COLLECTION" \
    --env-var "baseUrl=$BASE_URL" \
    --env-var "authToken=${CTK_BEARER_TOKEN:-}" \
    --reporters cli,junit \
    --reporter-junit-export "$JUNIT" \
    --color off \
    --timeout-request 30000
NEWMAN_RC=$?
set -e

echo "run.sh: junit report: $JUNIT"
if [[ $NEWMAN_RC -ne 0 ]]; then
    echo "run.sh: newman exited with $NEWMAN_RC" >&2
    show_log
fi
exit "$NEWMAN_RC"
