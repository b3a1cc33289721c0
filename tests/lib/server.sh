# Shared by the scripts under tests/ that run the real binary (source it, do not run it):
# start `tmf635` on a free loopback port and wait until it answers, show its log, stop it.
#
#   server_start BIN DATABASE_URL LOG [ENV=VALUE ...]  sets SERVER_PID, PORT, ROOT, BASE_URL
#   server_stop                                      SIGTERM, then SIGKILL after 5 s
#   show_log                                         the server's log on stderr

SERVER_PID=""
SERVER_LOG=${SERVER_LOG:-}

show_log() {
    echo "----- server log ($SERVER_LOG) -----" >&2
    cat "$SERVER_LOG" >&2 || true
    echo "----- end of server log -----" >&2
}

server_start() {
    local bin=$1 db_url=$2 code="" up=""
    SERVER_LOG=$3
    shift 3
    PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
    ROOT="http://127.0.0.1:$PORT"
    BASE_URL="$ROOT/tmf-api/usageManagement/v4"
    echo "$(basename "$0"): starting $bin on 127.0.0.1:$PORT (log: $SERVER_LOG)"
    env "$@" DATABASE_URL="$db_url" TMF635_LISTEN="127.0.0.1:$PORT" "$bin" >"$SERVER_LOG" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 60); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "$(basename "$0"): the server exited before answering" >&2
            show_log
            exit 1
        fi
        # The list answers once the database is migrated; 401 too when authentication is on.
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$BASE_URL/usage?limit=1" || true)
        if [[ "$code" == "200" || "$code" == "206" || "$code" == "401" ]]; then
            up=1
            break
        fi
        sleep 0.5
    done
    if [[ -z "$up" ]]; then
        echo "$(basename "$0"): GET $BASE_URL/usage?limit=1 did not answer within 30 s (last status: ${code:-none})" >&2
        show_log
        exit 1
    fi
}

server_stop() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "$(basename "$0"): server did not stop on SIGTERM within 5 s, sending SIGKILL" >&2
            kill -KILL "$SERVER_PID" 2>/dev/null || true
        fi
        wait "$SERVER_PID" 2>/dev/null || true
    fi
}
