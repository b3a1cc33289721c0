#!/usr/bin/env bash
# SDKs as client teams make them: generates each from the spec a tmf635 server binary serves
# at /openapi.json, fails on any warning a generator prints, and runs a short program with each
# against that server (create, list with a filter, retrieve, patch and delete a usage; create a
# usage specification; register and remove a hub subscription; every step checked).
#
#   tests/sdk/run.sh <path-to-tmf635-binary>
#
# Generators, pinned: openapi-generator (`python` and `typescript-fetch`, the jar the PyPI
# package openapi-generator-cli ships, on the machine's Java) and openapi-python-client from
# tests/sdk/requirements.txt in a venv under target/; @hey-api/openapi-ts from
# tests/sdk/package-lock.json. The TypeScript programs and the SDKs they use are compiled with
# `tsc --strict`, then run under Node. The server runs with authentication on (HS256): each
# SDK sends the bearer token through its own security support.
#
# Prints PASS or FAIL last; exits 0 only on PASS. The generated code, the generators' output
# and the server log stay in the temporary directory it prints on failure.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 <path-to-tmf635-binary>" >&2
    exit 64
fi
BIN=$1
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
if [[ ! -x "$BIN" ]]; then
    echo "run.sh: server binary not found or not executable: $BIN" >&2
    exit 66
fi
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

# --- tools ---------------------------------------------------------------------------------------
VENV=$REPO/target/sdk-venv
stamp=$VENV/.requirements.sha256
want=$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)
if [[ ! -x $VENV/bin/openapi-generator-cli || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
    echo "run.sh: installing $HERE/requirements.txt into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
    echo "$want" > "$stamp"
fi
(cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
# openapi-python-client formats what it generates with ruff, from the venv.
export PATH=$VENV/bin:$HERE/node_modules/.bin:$PATH

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tmf635-sdk.XXXXXX")
SERVER_LOG="$WORK/server.log"
# shellcheck source=../lib/server.sh
source "$HERE/../lib/server.sh"
cleanup() {
    local rc=$?
    server_stop
    if [[ $rc -eq 0 ]]; then
        rm -rf "$WORK"
        echo "PASS: SDKs generated without warnings, every program step passed"
    else
        echo "FAIL: SDK check (exit $rc; generated code, logs and server log in $WORK)"
    fi
    exit "$rc"
}
trap cleanup EXIT

SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
TOKEN=$("$HERE/../lib/hs256_token.py" "$SECRET" "usage.read usage.write usageSpecification.read usageSpecification.write hub.manage")
# Subscriptions point at a closed loopback port; delivery is off, so nothing is sent.
server_start "$BIN" "sqlite://$WORK/sdk.db?mode=rwc" "$SERVER_LOG" NO_COLOR=1 \
    TMF635_AUTH_HS256_SECRET="$SECRET" TMF635_DELIVERY_ENABLED=false \
    TMF635_CALLBACK_ALLOW_CIDRS=127.0.0.0/8
SPEC=$WORK/openapi.json
curl -fsS -o "$SPEC" "$ROOT/openapi.json"

# --- generating ----------------------------------------------------------------------------------
# generate NAME COMMAND...: runs a generator, its output kept in $WORK/NAME.log; fails on its
# exit status or on any line of its output that warns (`warnings` selects them).
generate() {
    local name=$1 log="$WORK/$1.log"
    shift
    echo "run.sh: generating $name"
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        echo "run.sh: $name: the generator failed" >&2
        return 1
    fi
    local found
    found=$(warnings "$name" "$log")
    if [[ -n $found ]]; then
        echo "$found" >&2
        echo "run.sh: $name: the generator warned on the served spec ($(wc -l <<<"$found") line(s) above)" >&2
        return 1
    fi
    echo "run.sh: $name: no warnings"
}

# openapi-generator's python generator (7.7 to at least 7.26) looks up the schema name of every
# property's `$ref` without checking it has one, which logs "Failed to get the schema name: null"
# once for any spec with a plain property. That line is set aside only while the same
# generator prints it for a spec of one object with one string property too.
GENERATOR_DEFECT='WARN  o.o.codegen.utils.ModelUtils - Failed to get the schema name: null'
python_generator_defect() {
    printf '%s' '{"openapi":"3.0.3","info":{"title":"probe","version":"1"},"paths":{},"components":{"schemas":{"A":{"type":"object","properties":{"a":{"type":"string"}}}}}}' >"$WORK/probe.json"
    openapi-generator-cli generate -i "$WORK/probe.json" -g python -o "$WORK/probe" --dry-run 2>&1 |
        grep -qF "$GENERATOR_DEFECT"
}

warnings() { # warnings NAME LOG: the lines of LOG that warn
    case $1 in
        openapi-generator-*)
            # Its log lines: `[main] WARN  o.o.c.Class - message` (and ERROR).
            grep -E '\] (WARN|ERROR) ' "$2" |
                if [[ $1 == openapi-generator-python ]] && python_generator_defect; then
                    grep -vF "$GENERATOR_DEFECT"
                else
                    cat
                fi || true
            ;;
        *) grep -iE 'warn|error|unsupported|skipp' "$2" || true ;;
    esac
}

# `Error` (TMF's name) is a built-in of TypeScript: the generator renames it and warns unless
# told the name to use.
generate openapi-generator-python \
    openapi-generator-cli generate -i "$SPEC" -g python -o "$WORK/og-python" \
    --package-name tmf635_ogpy --global-property apiTests=false,modelTests=false
generate openapi-generator-typescript-fetch \
    openapi-generator-cli generate -i "$SPEC" -g typescript-fetch -o "$WORK/ts/typescript-fetch" \
    --model-name-mappings Error=TmfError
# openapi-python-client (every version to at least 0.29.1) tells an operation's bodies apart
# with `isinstance(body, <type>)`, which for an array body (JSON Patch, beside the merge patch
# object) is `list[JsonPatchOperation]`, and Python raises on every call. Its endpoint template
# is used with that one expression changed to the runtime type the generator itself provides
# for isinstance checks; the change must apply exactly once, so a version that differs there
# fails here.
templates=$WORK/opc-templates
mkdir -p "$templates"
python3 - "$("$VENV/bin/python" -c 'import openapi_python_client, os; print(os.path.dirname(openapi_python_client.__file__))')/templates/endpoint_module.py.jinja" "$templates/endpoint_module.py.jinja" <<'PY'
import sys
text = open(sys.argv[1]).read()
broken = "isinstance(body, {{body.prop.get_type_string(no_optional=True) | as_unembedded_code }})"
if text.count(broken) != 1:
    sys.exit("run.sh: openapi-python-client's endpoint template is not the one this workaround is for")
open(sys.argv[2], "w").write(text.replace(broken, "isinstance(body, {{body.prop.get_instance_type_string() | as_unembedded_code }})"))
PY
generate openapi-python-client \
    openapi-python-client generate --path "$SPEC" --meta none --output-path "$WORK/opc/tmf635_opc" \
    --config "$HERE/openapi-python-client.yaml" --custom-template-path "$templates"
generate hey-api \
    openapi-ts --input "$SPEC" --output "$WORK/ts/hey-api" --no-log-file

# --- running -------------------------------------------------------------------------------------
run_program() { # run_program NAME COMMAND...
    echo "run.sh: $1"
    shift
    if ! "$@"; then
        echo "run.sh: the program failed" >&2
        return 1
    fi
}
cd "$WORK"
run_program "openapi-generator python SDK" \
    env PYTHONPATH="$HERE" "$VENV/bin/python" "$HERE/openapi_generator_python.py" "$WORK/og-python" "$BASE_URL" "$TOKEN"
run_program "openapi-python-client SDK" \
    env PYTHONPATH="$HERE" "$VENV/bin/python" "$HERE/openapi_python_client.py" "$WORK/opc" "$BASE_URL" "$TOKEN"

cp "$HERE/tsconfig.json" "$HERE/check.ts" "$HERE/typescript_fetch.ts" "$HERE/hey_api.ts" "$WORK/ts/"
ln -s "$HERE/node_modules" "$WORK/ts/node_modules"
echo "run.sh: tsc --strict (the programs and both TypeScript SDKs)"
tsc -p "$WORK/ts/tsconfig.json"
run_program "openapi-generator typescript-fetch SDK" node "$WORK/ts/out/typescript_fetch.js" "$BASE_URL" "$TOKEN"
run_program "@hey-api/openapi-ts SDK" node "$WORK/ts/out/hey_api.js" "$BASE_URL" "$TOKEN"
