#!/usr/bin/env bash
# ejabberd (Debian package) as a benchmark peer on loopback ports 25222 (c2s) / 25280 (http).
#
#   ejabberd.sh start            start pinned to CPU $SERVER_CPU, print the PID of beam.smp
#   ejabberd.sh stop             stop it
#   ejabberd.sh pid              print the PID if running
#   ejabberd.sh register N       create user1..userN@localhost ("secret") via a XEP-0227 import
#   ejabberd.sh clean            stop and delete its data
#
# A private node (ejabberd-bench@localhost) with its own config, spool and logs under
# bench/run/ejabberd; Debian's own ejabberd service is never touched. Runs as the 'ejabberd'
# user through setpriv (su would reset the open-file limit). BENCH_PLAIN=1: no required TLS.
# BENCH_SCRAM=sha256 (default) or sha1: auth_scram_hash (data in run/ejabberd-<hash>).
set -euo pipefail
source "$(dirname "$0")/common.sh"
C2S_PORT="${C2S_PORT:-25222}"
HTTP_PORT="${HTTP_PORT:-25280}"
RUN="$RUN_BASE/ejabberd-$BENCH_SCRAM"
NODE="ejabberd-bench@localhost"
PASSWORD="${PASSWORD:-secret}"
command -v ejabberdctl >/dev/null || die "ejabberd is not installed (apt-get install ejabberd)"

ctl() {  # from $RUN: the ejabberd user may not be able to read the caller's directory
    (cd "$RUN" && HOME=/var/lib/ejabberd setpriv --reuid=ejabberd --regid=ejabberd \
        --init-groups -- ejabberdctl --config "$RUN/ejabberd.yml" \
        --ctl-config "$RUN/ejabberdctl.cfg" --logs "$RUN/logs" --spool "$RUN/spool" \
        --node "$NODE" "$@")
}

setup() {
    ensure_certs
    mkdir -p "$RUN/logs" "$RUN/spool" "$RUN/certs"
    cp "$CERTS_DIR/$DOMAIN.pem" "$RUN/certs/"
    local require=true
    [ "${BENCH_PLAIN:-0}" = 1 ] && require=false
    fill "$(dirname "$0")/ejabberd.yml" "$RUN/ejabberd.yml" \
        BIND_IP="$BIND_IP" C2S_PORT="$C2S_PORT" HTTP_PORT="$HTTP_PORT" REQUIRE_TLS="$require" \
        CERTFILE="$RUN/certs/$DOMAIN.pem" DOMAIN="$DOMAIN" \
        SCRAM_HASH="$([ "$BENCH_SCRAM" = sha1 ] && echo sha || echo sha256)"
    printf 'ERLANG_NODE=%s\nPOLL=true\nERL_MAX_PORTS=65536\n' "$NODE" > "$RUN/ejabberdctl.cfg"
    chown -R ejabberd:ejabberd "$RUN"
    chmod 700 "$RUN/certs"
}

pid() {
    local p
    p="$(pgrep -u ejabberd -f "beam.smp.*-s?name $NODE" | head -n1)" || return 1
    [ -n "$p" ] && echo "$p"
}

start() {
    if pid >/dev/null; then pid; return; fi
    setup
    (ulimit -n 20000 2>/dev/null || true
     ctl start >/dev/null 2>&1 </dev/null) || true
    # taskset after the fact: pinning ejabberdctl would also pin its short-lived helpers.
    for _ in $(seq 100); do pid >/dev/null && break; sleep 0.2; done
    local p; p="$(pid)" || die "ejabberd did not start (see $RUN/logs)"
    taskset -a -p -c "$SERVER_CPU" "$p" >/dev/null
    wait_port "$C2S_PORT" 60 || die "ejabberd did not open $C2S_PORT (see $RUN/logs)"
    echo "$p"
}

stop() {
    local p
    p="$(pid)" || return 0
    ctl stop >/dev/null 2>&1 || true
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.2; done
    kill -9 "$p" 2>/dev/null || true
}

register() {
    local n="$1" file="$RUN/users.xml"
    pid >/dev/null || die "start ejabberd first"
    # Right after the start Mnesia may not have loaded the passwd table yet: retry a while.
    for _ in $(seq 30); do
        ctl registered_users "$DOMAIN" > "$RUN/registered.txt" 2>&1 && break
        sleep 1
    done
    grep -q "exception" "$RUN/registered.txt" && die "registered_users failed (see $RUN/registered.txt)"
    # Only the missing users: the importer stops at the first user that already exists.
    {
        echo "<?xml version='1.0' encoding='UTF-8'?>"
        echo "<server-data xmlns='urn:xmpp:pie:0'><host jid='$DOMAIN'>"
        seq 1 "$n" | awk -v pw="$PASSWORD" 'FILENAME != "-" { have[$1] = 1; next }
            !have["user" $1] { printf "<user name=\x27user%s\x27 password=\x27%s\x27/>\n", $1, pw }' \
            "$RUN/registered.txt" -
        echo "</host></server-data>"
    } > "$file"
    chown ejabberd:ejabberd "$file"
    if grep -q "<user " "$file"; then
        ctl --no-timeout import_piefxis "$file" >/dev/null || echo "import_piefxis reported an error (see $RUN/logs/error.log)" >&2
    fi
    echo "registered users: $(ctl registered_users "$DOMAIN" | wc -l)"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    pid) pid ;;
    register) register "${2:?N}" ;;
    clean) stop; rm -rf "$RUN" ;;
    *) sed -n '2,15p' "$0"; exit 2 ;;
esac
