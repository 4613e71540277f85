#!/usr/bin/env bash
# Heap calls and system calls per request of the bordergate process, for the
# two bordergate sides of bench/proxy_vs_nginx.sh (same policy, same 800-byte
# POST): pass-through (domestic) and full (abroad, strict audit).
#   heap: bench/malloc_count.c preloaded; malloc+calloc+realloc (and frees)
#         over a wrk run divided by the requests wrk completed.
#   syscalls: `strace -f -c` attached over a second wrk run, divided likewise
#         (strace slows the proxy; the count per request is what matters).
#
#   bench/allocs_per_request.sh [DURATION] [CONNECTIONS]   (default 3s 10)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
DURATION=${1:-3s}
CONNS=${2:-10}
command -v wrk >/dev/null || { echo "bench: wrk is not installed" >&2; exit 1; }
SO="$BENCH_TMP/malloc_count.so"
cc -O2 -shared -fPIC -o "$SO" "$BG_ROOT/bench/malloc_count.c"

SINK_PORT=$(free_port); BG_PORT=$(free_port)
"$BG_BIN" sink --listen 127.0.0.1:$SINK_PORT >/dev/null 2>&1 & BENCH_PIDS+=($!)
"$BG_BIN" sink --listen 127.0.0.2:$SINK_PORT >/dev/null 2>&1 & BENCH_PIDS+=($!)
wait_port $SINK_PORT
bg_config bg 1 "$BG_PORT" strict
COUNTS="$BENCH_TMP/counts"
MALLOC_COUNT_FILE="$COUNTS" LD_PRELOAD="$SO" "$BG_BIN" run --config "$BENCH_TMP/bg.json" \
    >"$BENCH_TMP/bg.log" 2>&1 & BG_PID=$!; BENCH_PIDS+=($BG_PID)
wait_port $BG_PORT
LUA="$BG_ROOT/bench/post800.lua"
LUA_DOM="$BENCH_TMP/post800-domestic.lua"
sed 's/api.partner.example/api.domestic.example/' "$LUA" > "$LUA_DOM"

heap() { # -> "ALLOCS FREES" so far
    od -An -t u8 -N 40 "$COUNTS" | tr -s ' \n' ' ' | awk '{print $1 + $2 + $3 + $5, $4}'
}
requests() { # URL LUA -> requests completed by one wrk run
    wrk -t1 -c"$CONNS" -d"$DURATION" -s "$2" "$1" | awk '/requests in/ {print $1}'
}
printf '%-36s %12s %12s %12s\n' side "allocs/req" "frees/req" "syscalls/req"
for side in pt full; do
    lua=$LUA; name="bordergate full (abroad, strict audit)"
    [ $side = pt ] && { lua=$LUA_DOM; name="bordergate pass-through (domestic)"; }
    url="http://127.0.0.1:$BG_PORT/orders"
    requests "$url" "$lua" >/dev/null # warm-up: pools, connections
    read -r a0 f0 <<<"$(heap)"
    n=$(requests "$url" "$lua")
    read -r a1 f1 <<<"$(heap)"
    sc="-"
    if command -v strace >/dev/null; then
        strace -f -c -o "$BENCH_TMP/strace.$side" -p "$BG_PID" & ST=$!
        sleep 0.5
        m=$(requests "$url" "$lua")
        kill -INT $ST; wait $ST 2>/dev/null || true
        calls=$(awk '$NF=="total" {print $(NF-2)}' "$BENCH_TMP/strace.$side")
        sc=$(awk -v c="$calls" -v m="$m" 'BEGIN {printf "%.2f", c / m}')
        [ -n "${KEEP_STRACE:-}" ] && cat "$BENCH_TMP/strace.$side" >&2
    fi
    awk -v n="$name" -v a=$((a1 - a0)) -v f=$((f1 - f0)) -v r="$n" -v s="$sc" \
        'BEGIN {printf "%-36s %12.2f %12.2f %12s\n", n, a / r, f / r, s}'
done
