# Shared helpers for the peer scripts (sourced). Loopback only; everything lives in $RUN_BASE.
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_BASE="${RUN_BASE:-$BENCH_DIR/run}"
BIND_IP="${BIND_IP:-127.0.0.1}"
DOMAIN="${DOMAIN:-localhost}"
SERVER_CPU="${SERVER_CPU:-1}"
CERTS_DIR="$RUN_BASE/certs"
# SCRAM hash the peers store keys for: sha256 (default) or sha1 (the baseline's). Each server
# stores one hash type and offers only that SCRAM mechanism; each hash has its own data dir.
BENCH_SCRAM="${BENCH_SCRAM:-sha256}"
case "$BENCH_SCRAM" in sha256|sha1) ;; *) echo "BENCH_SCRAM: sha256 or sha1" >&2; exit 2 ;; esac

die() { echo "$0: $*" >&2; exit 1; }

# One self-signed certificate shared by every server, Meerkat included (run.py points its
# listeners here): ECDSA P-256, the kind Meerkat generates by default. The baseline used
# RSA-2048, which makes each TLS handshake's signature about ten times dearer.
ensure_certs() {
    mkdir -p "$CERTS_DIR"
    if [ ! -s "$CERTS_DIR/$DOMAIN.pem" ]; then
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
            -subj "/CN=$DOMAIN" \
            -addext "subjectAltName=DNS:$DOMAIN" \
            -keyout "$CERTS_DIR/$DOMAIN.key" -out "$CERTS_DIR/$DOMAIN.crt" 2>/dev/null \
            || die "openssl failed"
        cat "$CERTS_DIR/$DOMAIN.crt" "$CERTS_DIR/$DOMAIN.key" > "$CERTS_DIR/$DOMAIN.pem"
    fi
}

# wait_port PORT SECONDS: until something accepts on $BIND_IP:PORT.
wait_port() {
    local deadline=$((SECONDS + $2))
    while [ $SECONDS -lt $deadline ]; do
        if (exec 3<>"/dev/tcp/$BIND_IP/$1") 2>/dev/null; then return 0; fi
        sleep 0.2
    done
    return 1
}

# fill TEMPLATE OUT VAR=VALUE...: replace @VAR@ placeholders.
fill() {
    local template="$1" out="$2"; shift 2
    local args=()
    for kv in "$@"; do args+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
    sed "${args[@]}" "$template" > "$out"
    if grep -v "^ *[-#]" "$out" | grep -q "@[A-Z_]*@"; then die "unfilled placeholder in $out"; fi
}
