#!/usr/bin/env bash
# Property-based HTTP fuzzing of the tmf635 server with schemathesis, driven by the OpenAPI
# document the server itself serves at /openapi.json.
#
#   tests/fuzz/run.sh <path-to-tmf635-binary>
#
# Starts the binary on a fresh SQLite file in a temp dir and on a free loopback port, with
# authentication on (HS256; schemathesis sends a token with every scope, and checks that
# requests without it or with a wrong one are refused), seeds one usage, one usageSpecification
# and one hub so the by-id operations can reach existing resources, runs schemathesis
# (examples, coverage, fuzzing and stateful phases) with every check, data acceptance included,
# stops the server and exits non-zero on any failure.
#
# Reproducible: a fixed number of examples per operation, Hypothesis' deterministic (derandomized)
# generation, one worker. Bounded: the schemathesis run is stopped after FUZZ_TIMEOUT seconds,
# which fails the run.
#
# Environment (all optional):
#   FUZZ_MAX_EXAMPLES  test cases per operation in the fuzzing phase   (default 50)
#   FUZZ_SEED          a seeded random run instead of the deterministic one (default unset)
#   FUZZ_TIMEOUT       overall time bound of the schemathesis run, s   (default 360)
#   FUZZ_CONTINUE=1    go on after an operation's first failure (all failures; slower)
#   FUZZ_REPORT_DIR    keep the JUnit and NDJSON reports and the server log here
#   FUZZ_PYTHON        interpreter for the venv                        (default python3)
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 <path-to-tmf635-binary>" >&2
    exit 2
fi
[[ -f $1 && -x $1 ]] || { echo "fuzz: $1 is not an executable file" >&2; exit 2; }
BINARY=$(realpath "$1")

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VENV=$HERE/.venv
MAX_EXAMPLES=${FUZZ_MAX_EXAMPLES:-50}
TIMEOUT=${FUZZ_TIMEOUT:-360}
BASE_PATH=/tmf-api/usageManagement/v4
STARTED=$SECONDS

# --- the venv, (re)built when missing or when requirements.txt changed -----------------------
stamp=$VENV/.requirements.sha256
want=$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)
if [[ ! -x $VENV/bin/schemathesis || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
    echo "fuzz: installing $HERE/requirements.txt into $VENV"
    rm -rf "$VENV"
    "${FUZZ_PYTHON:-python3}" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
    echo "$want" > "$stamp"
fi
PY=$VENV/bin/python
"$VENV/bin/schemathesis" --version

# --- the server --------------------------------------------------------------------------------
WORK=$(mktemp -d -t tmf635-fuzz.XXXXXX)
SERVER_PID=
cleanup() {
    local rc=$?
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ -n ${FUZZ_REPORT_DIR:-} && -f $WORK/server.log ]]; then
        mkdir -p "$FUZZ_REPORT_DIR" &&
            sed 's/\x1b\[[0-9;]*m//g' "$WORK/server.log" > "$FUZZ_REPORT_DIR/server.log"
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A copy, so that a concurrent `cargo build` replacing the binary cannot change it mid-run.
cp "$BINARY" "$WORK/tmf635"
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ORIGIN=http://127.0.0.1:$PORT
API=$ORIGIN$BASE_PATH

# Event delivery is off and callbacks are limited to loopback: fuzzed hub callbacks must never
# make the server send traffic anywhere but this machine (loopback, refused by default, is
# allowed by the egress policy so that registrations can succeed).
# Authentication on, with a token of every scope for schemathesis.
# Imports run in the background and the fuzzer sends the next one at once, so the default
# bound on imports running (503 past it, which the server-error check counts as a failure) is
# raised far above what it can start in a run.
SECRET=$("$PY" -c 'import secrets; print(secrets.token_hex(32))')
TOKEN=$("$HERE/../lib/hs256_token.py" "$SECRET" \
    "usage.read usage.write usageSpecification.read usageSpecification.write hub.manage listener.write")
DATABASE_URL="sqlite://$WORK/fuzz.db?mode=rwc" \
TMF635_LISTEN=127.0.0.1:$PORT \
TMF635_AUTH_HS256_SECRET=$SECRET \
TMF635_DELIVERY_ENABLED=false \
TMF635_CALLBACK_ALLOWED_HOSTS=127.0.0.1,localhost \
TMF635_CALLBACK_ALLOW_CIDRS=127.0.0.0/8,::1 \
TMF635_MAX_IMPORT_JOBS=256 \
RUST_LOG=${RUST_LOG:-info} \
    "$WORK/tmf635" > "$WORK/server.log" 2>&1 &
SERVER_PID=$!

for _ in $(seq 150); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "fuzz: the server exited at start; its log:" >&2
        cat "$WORK/server.log" >&2
        exit 1
    fi
    curl -fsS -o /dev/null "$ORIGIN/openapi.json" 2>/dev/null && break
    sleep 0.2
done
curl -fsS -o "$WORK/openapi.json" "$ORIGIN/openapi.json" || {
    echo "fuzz: the server did not answer /openapi.json within 30 s" >&2
    cat "$WORK/server.log" >&2
    exit 1
}
echo "fuzz: server pid $SERVER_PID on $ORIGIN (log $WORK/server.log)"

# --- seed data -----------------------------------------------------------------------------------
post() { # post <path> <json> -> prints the new resource's id
    curl -fsS -X POST "$API$1" -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" -d "$2" |
        "$PY" -c 'import json, sys; print(json.load(sys.stdin)["id"])'
}
SPEC_ID=$(post /usageSpecification '{"name":"fuzz seed spec","description":"seeded by tests/fuzz/run.sh","version":"1.0","lifecycleStatus":"Active","isBundle":false,"validFor":{"startDateTime":"2024-01-01T00:00:00Z"}}')
USAGE_ID=$(post /usage "{\"description\":\"fuzz seed usage\",\"usageDate\":\"2024-01-02T03:04:05Z\",\"usageType\":\"VOICE\",\"status\":\"received\",\"usageSpecification\":{\"id\":\"$SPEC_ID\",\"href\":\"$API/usageSpecification/$SPEC_ID\",\"name\":\"fuzz seed spec\"},\"usageCharacteristic\":[{\"name\":\"duration\",\"valueType\":\"integer\",\"value\":60}],\"relatedParty\":[{\"id\":\"p1\",\"name\":\"Alice\",\"role\":\"customer\",\"@referredType\":\"Individual\"}]}")
HUB_ID=$(post /hub '{"callback":"http://127.0.0.1:9/fuzz","query":"eventType=UsageCreateEvent"}')
echo "fuzz: seeded usage $USAGE_ID, usageSpecification $SPEC_ID, hub $HUB_ID"

# --- schemathesis configuration ------------------------------------------------------------------
# The seeded ids are offered for the {id} path parameters half of the time (the other half are
# generated or taken from earlier responses), so the by-id operations exercise both existing and
# missing resources.
# PATCH always sends `If-Match: *`: a generated If-Match never names a real revision (the
# coverage phase sends an empty one), so otherwise nearly every PATCH of an existing resource
# stops at 412 and the patch bodies never reach the code that applies them. DELETE keeps
# generated If-Match values and gets `*` half of the time.
# (`include-name` is "METHOD path": the include-* keys of one block are alternatives, not all
# required, so include-path with include-method would select more than meant.)
#
# Expectations of the data-acceptance checks, each for a rule the server enforces that OpenAPI
# cannot state (api/ says so where it applies):
# - No string or attribute name may hold NUL (both databases refuse it): none is generated
#   (OpenAPI 3.0 cannot restrict attribute names).
# - fields must name attribute paths of the resource: it is drawn from such paths, first-level
#   ones (a nested path such as relatedParty.id answers parties without the attributes the
#   response schema, as the standard writes it, requires of a whole one).
# - PATCH: 412 when If-Match names another revision, 422 when a well-formed patch cannot apply
#   to the stored document (a path it lacks, an invalid result, id or href changed): both
#   depend on what is stored, as 404 and 409 (expected by default) do. DELETE: 412 likewise.
#   A merge patch is partial at every depth and its nulls remove, and a JSON Patch operation
#   needs value or from by its op, neither of which the schemas can say (hooks.py).
# - POST /hub: 400 for a callback the server's callback policy refuses (a host it cannot
#   resolve, addresses it may not reach) or a query outside the filter grammar; POST
#   /exportJob: 400 for a query a list would refuse (attributes the resource lacks).
# - POST /importJob: a body is accepted as a job and its rows checked as they are read (bad
#   rows are counted in the job), so a body that breaks the row schema is a 201 too.
cat > "$WORK/schemathesis.toml" <<EOF
hooks = "$HERE/hooks.py"

[generation]
allow-x00 = false

[dictionaries.usage-fields]
values = ["id", "usageDate,status", "relatedParty,usageType", "usageCharacteristic,usageSpecification", ""]
[dictionaries.spec-fields]
values = ["name", "name,version,validFor", "specCharacteristic,lifecycleStatus", ""]
[dictionaries.usage-ids]
values = ["$USAGE_ID"]
[dictionaries.spec-ids]
values = ["$SPEC_ID"]
[dictionaries.hub-ids]
values = ["$HUB_ID"]
[dictionaries.if-match]
values = ["*"]

[[operations]]
include-name = "GET /usage"
parameters = { "query.fields" = { dictionary = "usage-fields" } }

[[operations]]
include-name = "GET /usage/{id}"
parameters = { "path.id" = { dictionary = "usage-ids", probability = 0.5 }, "query.fields" = { dictionary = "usage-fields" } }

[[operations]]
include-name = "PATCH /usage/{id}"
parameters = { "path.id" = { dictionary = "usage-ids", probability = 0.5 }, "header.If-Match" = "*" }
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "412", "422", "429"]

[[operations]]
include-name = "DELETE /usage/{id}"
parameters = { "path.id" = { dictionary = "usage-ids", probability = 0.5 }, "header.If-Match" = { dictionary = "if-match", probability = 0.5 } }
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "412", "429"]

[[operations]]
include-name = "GET /usageSpecification"
parameters = { "query.fields" = { dictionary = "spec-fields" } }

[[operations]]
include-name = "GET /usageSpecification/{id}"
parameters = { "path.id" = { dictionary = "spec-ids", probability = 0.5 }, "query.fields" = { dictionary = "spec-fields" } }

[[operations]]
include-name = "PATCH /usageSpecification/{id}"
parameters = { "path.id" = { dictionary = "spec-ids", probability = 0.5 }, "header.If-Match" = "*" }
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "412", "422", "429"]

[[operations]]
include-name = "DELETE /usageSpecification/{id}"
parameters = { "path.id" = { dictionary = "spec-ids", probability = 0.5 }, "header.If-Match" = { dictionary = "if-match", probability = 0.5 } }
checks.positive_data_acceptance.expected-statuses = ["2xx", "401", "403", "404", "409", "412", "429"]

[[operations]]
include-name = ["POST /hub", "POST /exportJob"]
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "401", "403", "404", "409", "429"]

[[operations]]
include-name = "POST /importJob"
checks.negative_data_rejection.expected-statuses = ["201", "400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]

[[operations]]
include-name = ["GET /hub/{id}", "DELETE /hub/{id}", "GET /hub/{id}/delivery", "POST /hub/{id}/redrive"]
parameters = { "path.id" = { dictionary = "hub-ids", probability = 0.5 } }
EOF

# --- the run -------------------------------------------------------------------------------------
REPORT_DIR=${FUZZ_REPORT_DIR:-$WORK/report}
mkdir -p "$REPORT_DIR"
# Every check, data acceptance included; its expectations are configured above.
CHECKS=all
# Reproducible by default: Hypothesis' derandomized mode (no seed, no example database). With
# FUZZ_SEED set, a seeded random run instead: still reproducible, and a new seed explores more.
if [[ -n ${FUZZ_SEED:-} ]]; then
    GENERATION=(--seed "$FUZZ_SEED")
    how="seed $FUZZ_SEED"
else
    GENERATION=(--generation-deterministic)
    how="deterministic"
fi

# By default an operation stops at its first failure (then shrinks it); FUZZ_CONTINUE=1 runs
# every test case of every operation, to see all the kinds of failure at once (slower, noisy).
CONTINUE=()
[[ ${FUZZ_CONTINUE:-0} == 1 ]] && CONTINUE=(--continue-on-failure)

echo "fuzz: schemathesis against $API ($MAX_EXAMPLES examples per operation, $how, time bound ${TIMEOUT}s)"
set +e
timeout --signal=INT --kill-after=20 "$TIMEOUT" \
    "$VENV/bin/schemathesis" --config-file "$WORK/schemathesis.toml" run "$ORIGIN/openapi.json" \
    --url "$API" \
    --header "Authorization: Bearer $TOKEN" \
    --checks "$CHECKS" \
    --max-examples "$MAX_EXAMPLES" \
    "${GENERATION[@]}" \
    "${CONTINUE[@]}" \
    --workers 1 \
    --request-timeout 10 \
    --no-color \
    --report junit,ndjson \
    --report-junit-path "$REPORT_DIR/junit.xml" \
    --report-ndjson-path "$REPORT_DIR/events.ndjson"
rc=$?
set -e

# --- summary -------------------------------------------------------------------------------------
elapsed=$((SECONDS - STARTED))
sed 's/\x1b\[[0-9;]*m//g' "$WORK/server.log" > "$WORK/server.plain.log"
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "fuzz: the server died during the run; the end of its log:"
    tail -n 40 "$WORK/server.plain.log"
    [[ $rc -eq 0 ]] && rc=1
fi
if grep -q 'panicked' "$WORK/server.plain.log"; then
    echo "fuzz: the server log has panics:"
    grep -A3 'panicked' "$WORK/server.plain.log" | head -n 40
    [[ $rc -eq 0 ]] && rc=1
fi
requests=$(grep -c ' request ' "$WORK/server.plain.log" || true)
statuses=$(grep ' request ' "$WORK/server.plain.log" | grep -oE ' status=[0-9]+' | cut -d= -f2 | sort -n | uniq -c |
    awk '{printf "%s%s x%s", sep, $2, $1; sep=", "}')
echo "fuzz: the server answered $requests requests ($statuses)"
counts=$("$PY" - "$REPORT_DIR/junit.xml" <<'PYEOF' || true
# One JUnit test case per API operation, plus one for the stateful phase.
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    sys.exit(1)
passed = failed = skipped = 0
for case in root.iter("testcase"):
    if case.find("failure") is not None or case.find("error") is not None:
        failed += 1
        print(f"fuzz:   FAILED {case.get('name')}", file=sys.stderr)
    elif case.find("skipped") is not None:
        skipped += 1
    else:
        passed += 1
print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
PYEOF
)
if [[ $rc -ne 0 && -s $REPORT_DIR/events.ndjson ]]; then
    echo
    "$PY" "$HERE/failures.py" "$REPORT_DIR/events.ndjson" || true
    echo
fi
if [[ $rc -eq 124 || $rc -eq 137 ]]; then
    echo "fuzz: TIMED OUT: schemathesis did not finish within ${TIMEOUT}s"
fi
if [[ $rc -eq 0 ]]; then
    echo "fuzz: PASSED in ${elapsed}s"
else
    echo "fuzz: FAILED (schemathesis exit code $rc) in ${elapsed}s"
fi
[[ -n ${FUZZ_REPORT_DIR:-} ]] && echo "fuzz: reports in $FUZZ_REPORT_DIR (junit.xml, events.ndjson, server.log)"
[[ -n $counts ]] && echo "fuzz: $counts"
exit "$rc"
