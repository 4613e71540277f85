#!/bin/bash
# Consent look-up cost: file backend vs Redis backend (cached, uncached), on a
# throw-away redis-server (no persistence) on a free loopback port.
#   bench/consent_bench.sh [N]      (default 20000 consents and look-ups)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
N=${1:-20000}
BENCH=${BG_CONSENT_BENCH:-$BG_ROOT/build/consent_bench}
command -v redis-server >/dev/null || { echo "consent_bench: redis-server is not installed" >&2; exit 1; }
PORT=$(free_port)
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$BENCH_TMP" \
    >"$BENCH_TMP/redis.log" 2>&1 &
BENCH_PIDS+=($!)
wait_port "$PORT"
"$BENCH" "redis://127.0.0.1:$PORT/0" "$N"
