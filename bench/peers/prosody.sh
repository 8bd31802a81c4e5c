#!/usr/bin/env bash
# Prosody (Debian package) as a benchmark peer on loopback ports 15222 (c2s) / 15280 (http).
#
#   prosody.sh start            start pinned to CPU $SERVER_CPU, print the PID
#   prosody.sh stop             stop it
#   prosody.sh pid              print the PID if running
#   prosody.sh register N       create user1..userN@localhost with password "secret"
#   prosody.sh clean            stop and delete its data
#
# Runs as the 'prosody' user through setpriv (not runuser/su: PAM would reset the open-file
# limit to 1,024). BENCH_PLAIN=1 turns off required encryption. BENCH_SCRAM=sha256 (default)
# or sha1: the hash its keys are stored for (data in run/prosody-<hash>). Config: prosody.cfg.lua.
set -euo pipefail
source "$(dirname "$0")/common.sh"
C2S_PORT="${C2S_PORT:-15222}"
HTTP_PORT="${HTTP_PORT:-15280}"
RUN="$RUN_BASE/prosody-$BENCH_SCRAM"
CFG="$RUN/prosody.cfg.lua"
PASSWORD="${PASSWORD:-secret}"
command -v prosody >/dev/null || die "prosody is not installed (apt-get install prosody)"

as_prosody() { setpriv --reuid=prosody --regid=prosody --init-groups -- "$@"; }

setup() {
    ensure_certs
    mkdir -p "$RUN/data" "$RUN/certs"
    cp "$CERTS_DIR/$DOMAIN.crt" "$CERTS_DIR/$DOMAIN.key" "$RUN/certs/"
    local require=true
    [ "${BENCH_PLAIN:-0}" = 1 ] && require=false
    fill "$(dirname "$0")/prosody.cfg.lua" "$CFG" \
        BIND_IP="$BIND_IP" C2S_PORT="$C2S_PORT" HTTP_PORT="$HTTP_PORT" DATA_DIR="$RUN/data" \
        RUN="$RUN" REQUIRE_TLS="$require" CERTS_DIR="$RUN/certs" DOMAIN="$DOMAIN" \
        PASSWORD_HASH="$([ "$BENCH_SCRAM" = sha1 ] && echo SHA-1 || echo SHA-256)"
    chown -R prosody:prosody "$RUN"
    chmod 700 "$RUN/certs"
}

pid() {
    [ -s "$RUN/prosody.pid" ] || return 1
    local p; p="$(cat "$RUN/prosody.pid")"
    kill -0 "$p" 2>/dev/null || return 1
    echo "$p"
}

start() {
    if pid >/dev/null; then pid; return; fi
    setup
    (ulimit -n 20000 2>/dev/null || true
     as_prosody taskset -c "$SERVER_CPU" prosody --config "$CFG" \
        >"$RUN/stdout.log" 2>&1 </dev/null &)
    wait_port "$C2S_PORT" 20 || die "prosody did not open $C2S_PORT (see $RUN/prosody.err)"
    for _ in $(seq 50); do pid >/dev/null && break; sleep 0.1; done
    pid
}

stop() {
    local p
    if p="$(pid)"; then
        kill "$p"
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
    fi
    rm -f "$RUN/prosody.pid"
}

register() {
    local n="$1"
    pid >/dev/null || die "start prosody first"
    for i in $(seq 1 "$n"); do
        echo "user:create(\"user$i@$DOMAIN\", \"$PASSWORD\")"
    done | as_prosody prosodyctl --config "$CFG" shell >"$RUN/register.log" 2>&1 || true
    local have; have="$(find "$RUN/data" -path "*accounts*" -name '*.dat' | wc -l)"
    echo "registered users on disk: $have"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    pid) pid ;;
    register) register "${2:?N}" ;;
    clean) stop; rm -rf "$RUN" ;;
    *) sed -n '2,12p' "$0"; exit 2 ;;
esac
