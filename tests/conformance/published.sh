#!/usr/bin/env bash
# Runs TM Forum's published conformance test kit for TMF635 v4.0.0, unmodified, against a
# tmf635 server binary started here on a free loopback port:
#
#   tests/conformance/published.sh <path-to-tmf635-binary> <DATABASE_URL>
#
# The kit is read from ../shared/conformance/tmforum-ctk-usage-4.0.0 beside the repository
# (or env TMF635_CTK_KIT); it is never kept in the repository. It runs as its README says:
# config.json configured with this server's API root (with the trailing slash the kit's URLs
# need), the headers and payloads of the kit's own config.json kept, then `node index.js` in
# ctk/ (preflight GET {url}usage, which must answer 200, then newman on the collection).
# index.js reads ../config.json and writes its results beside itself, so the kit is copied to a
# temporary directory first and the copy checked equal to the published one. Its declared
# dependencies come locked from tests/conformance/tmforum-ctk/.
#
# index.js exits 0 even when the preflight or the payload check stops it before newman, so the
# verdict is read from its newman report (jsonResults.json): all 15 requests run, assertions
# ran, none failed. Exits 0 only then.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 <path-to-tmf635-binary> <DATABASE_URL>" >&2
    exit 64
fi
BIN=$1
DB_URL=$2
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
KIT=${TMF635_CTK_KIT:-$REPO/../shared/conformance/tmforum-ctk-usage-4.0.0}
DEPS=$HERE/tmforum-ctk

if [[ ! -x "$BIN" ]]; then
    echo "published.sh: server binary not found or not executable: $BIN" >&2
    exit 66
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
if [[ ! -f "$KIT/ctk/index.js" || ! -f "$KIT/config.json" ]]; then
    echo "published.sh: TM Forum's kit not found at $KIT (expected ctk/index.js and config.json)" >&2
    exit 66
fi
if [[ ! -d "$DEPS/node_modules/newman" ]]; then
    echo "published.sh: installing the kit's dependencies (npm ci) in $DEPS"
    (cd "$DEPS" && npm ci --no-audit --no-fund --loglevel=error)
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tmf635-published-ctk.XXXXXX")
SERVER_LOG="$WORK/server.log"
# shellcheck source=../lib/server.sh
source "$HERE/../lib/server.sh"
cleanup() {
    local rc=$?
    server_stop
    if [[ $rc -eq 0 ]]; then rm -rf "$WORK"; else echo "published.sh: kept $WORK" >&2; fi
    exit "$rc"
}
trap cleanup EXIT

cp -R "$KIT" "$WORK/kit"
diff -r "$KIT" "$WORK/kit" >/dev/null || { echo "published.sh: the copy of the kit differs from $KIT" >&2; exit 1; }
ln -s "$DEPS/node_modules" "$WORK/kit/ctk/node_modules"

server_start "$BIN" "$DB_URL" "$SERVER_LOG"

# The kit's config.json with this server's API root; headers and payloads as published.
python3 - "$KIT/config.json" "$WORK/kit/config.json" "$BASE_URL/" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
config["url"] = sys.argv[3]
json.dump(config, open(sys.argv[2], "w"), indent=4)
PY
echo "published.sh: TM Forum's CTK (index.js, unmodified) against $BASE_URL/"
set +e
(cd "$WORK/kit/ctk" && node index.js)
KIT_RC=$?
set -e

RESULTS="$WORK/kit/jsonResults.json"
set +e
python3 - "$RESULTS" <<'PY'
import json, sys
try:
    run = json.load(open(sys.argv[1]))["run"]
except FileNotFoundError:
    sys.exit("published.sh: the kit wrote no jsonResults.json: newman never ran (preflight or config.json refused)")
stats = run["stats"]
requests, assertions = stats["requests"], stats["assertions"]
print(f"published.sh: {requests['total']} requests ({requests['failed']} failed), "
      f"{assertions['total']} assertions ({assertions['failed']} failed)")
for failure in run.get("failures", []):
    error = failure.get("error", {})
    print(f"published.sh:   FAILED {failure.get('source', {}).get('name', '?')}: "
          f"{error.get('test') or error.get('name', '')}: {error.get('message', '')}")
ok = (requests["total"] == 15 and requests["failed"] == 0 and assertions["total"] > 0
      and assertions["failed"] == 0 and not run.get("failures") and not run.get("error"))
sys.exit(0 if ok else 1)
PY
VERDICT=$?
set -e
if [[ $KIT_RC -ne 0 || $VERDICT -ne 0 ]]; then
    echo "published.sh: FAILED (index.js exit $KIT_RC; report $RESULTS)" >&2
    show_log
    exit 1
fi
echo "published.sh: PASSED"
