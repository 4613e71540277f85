#!/usr/bin/env bash
# Multi-core scaling: bordergate with 1 and then 2 workers (same binary, same
# config but "workers"), and nginx with 1 and 2 worker processes as the
# control, against the same `bordergate sink` upstream and the same wrk load
# (800-byte JSON POSTs with PI, bench/post800.lua):
#   passthrough  bordergate, destination domestic (routed, geo-checked, recorded)
#   full         bordergate, destination abroad: inspect, decide, mask the
#                mobile and e-mail, rewrite, fsync the record before forwarding
#   relaxed      the same with audit.durability "relaxed" (records fsynced
#                every 100 ms, not before forwarding): CPU-bound, so it shows
#                what a second core buys when the disk is not the limit
#   big          relaxed, a 13 KB body of 60 records with names, mobiles,
#                e-mails and addresses: the proxy's own work dominates
#
#   bench/multicore.sh [DURATION] [CONNECTIONS]     (default 5s 100)
#
# Everything runs on this one machine: wrk (2 threads), the sink and the
# proxy share its cores, so with 2 cores a second worker competes with the
# load generator and the upstream. nginx's own 1 -> 2 ratio in the same run
# shows how much scaling the machine leaves to any proxy.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
DURATION=${1:-5s}
CONNS=${2:-100}
command -v wrk >/dev/null || { echo "bench: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] && [ -z "${NGINX_SKIP:-}" ] || NGINX=""

HZ=$(getconf CLK_TCK)
SECS=${DURATION%s}
busy_ticks() { # -> clock ticks the whole machine spent busy so far
    local _c u n sy _i _w irq sirq st
    read -r _c u n sy _i _w irq sirq st _ < /proc/stat
    echo $((u + n + sy + irq + sirq + st))
}
cpu_ticks() { # PID... -> user+system clock ticks so far
    local t=0 p f
    for p in "$@"; do read -r -a f < "/proc/$p/stat"; t=$((t + f[13] + f[14])); done
    echo "$t"
}

# wrk2_run URL LUA "PROXY_PIDS" -> "RPS P99_MS CORES" with two wrk threads (one
# cannot load two workers). CORES: CPU used by proxy/sinks/wrk during the run.
wrk2_run() {
    local out p0 s0 p1 s1 wcpu b0 b1
    # shellcheck disable=SC2086
    p0=$(cpu_ticks $3); s0=$(cpu_ticks "${SINK_PIDS[@]}"); b0=$(busy_ticks)
    out=$(/usr/bin/time -f "%U %S" -o "$BENCH_TMP/wrk.time" \
          wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s "$2" "$1")
    # shellcheck disable=SC2086
    p1=$(cpu_ticks $3); s1=$(cpu_ticks "${SINK_PIDS[@]}"); b1=$(busy_ticks)
    wcpu=$(awk '{print $1 + $2}' "$BENCH_TMP/wrk.time")
    local non2xx
    non2xx=$(awk '/Non-2xx/ {print $4}' <<<"$out")
    if [ -n "$non2xx" ]; then echo "bench: $non2xx non-2xx responses from $1" >&2; fi
    awk '/^Requests\/sec:/ {rps=$2}
         $1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; p=v}
         END {printf "%s %s ", rps, p}' <<<"$out"
    awk -v p=$((p1 - p0)) -v s=$((s1 - s0)) -v w="$wcpu" -v b=$((b1 - b0)) -v hz="$HZ" -v d="$SECS" \
        'BEGIN {printf "%.2f/%.2f/%.2f/%.2f\n", p / hz / d, s / hz / d, w / d, b / hz / d}'
}

SINK_PORT=$(free_port)
"$BG_BIN" sink --listen 127.0.0.1:$SINK_PORT >/dev/null 2>&1 & BENCH_PIDS+=($!)
"$BG_BIN" sink --listen 127.0.0.2:$SINK_PORT >/dev/null 2>&1 & BENCH_PIDS+=($!)
SINK_PIDS=("${BENCH_PIDS[@]}")
wait_port $SINK_PORT

LUA="$BG_ROOT/bench/post800.lua"
LUA_DOM="$BENCH_TMP/post800-domestic.lua"
sed 's/api.partner.example/api.domestic.example/' "$LUA" > "$LUA_DOM"
LUA_BIG="$BENCH_TMP/post-big.lua"
python3 - "$LUA_BIG" <<'PY'
import json, sys
items = [{"sku": "SKU-%04d" % i, "qty": i % 5 + 1, "note": "customer called about delivery window %d" % i,
          "contact": {"name": "Li Na", "phone": "1391234%04d" % i, "email": "li.na%d@example.cn" % i},
          "addr": "Room %d, 88 Century Avenue, Pudong, Shanghai" % i} for i in range(60)]
body = json.dumps({"order_id": "ORD-1", "items": items})
with open(sys.argv[1], "w") as f:
    f.write('wrk.method = "POST"\nwrk.body = %s\nwrk.headers["Content-Type"] = "application/json"\n'
            'wrk.headers["Host"] = "api.partner.example"\n' % json.dumps(body))
PY


declare -A RPS P99 CPU
for W in 1 2; do
    for DUR in strict relaxed; do
        PORT=$(free_port)
        bg_config "bg-$W-$DUR" "$W" "$PORT" "$DUR"
        "$BG_BIN" run --config "$BENCH_TMP/bg-$W-$DUR.json" >"$BENCH_TMP/bg-$W-$DUR.log" 2>&1 &
        PID=$!; BENCH_PIDS+=($PID)
        wait_port "$PORT"
        wrk2_run "http://127.0.0.1:$PORT/orders" "$LUA" "$PID" >/dev/null   # warm up (DNS, pools)
        if [ "$DUR" = strict ]; then
            read -r RPS[pt$W] P99[pt$W] CPU[pt$W] < <(wrk2_run "http://127.0.0.1:$PORT/orders" "$LUA_DOM" "$PID")
            read -r RPS[full$W] P99[full$W] CPU[full$W] < <(wrk2_run "http://127.0.0.1:$PORT/orders" "$LUA" "$PID")
        else
            read -r RPS[rel$W] P99[rel$W] CPU[rel$W] < <(wrk2_run "http://127.0.0.1:$PORT/orders" "$LUA" "$PID")
            read -r RPS[big$W] P99[big$W] CPU[big$W] < <(wrk2_run "http://127.0.0.1:$PORT/orders" "$LUA_BIG" "$PID")
        fi
        kill "$PID"; wait "$PID" 2>/dev/null || true
    done
done

if [ -n "$NGINX" ]; then
    for W in 1 2; do
        PORT=$(free_port)
        mkdir -p "$BENCH_TMP/nginx$W"
        cat > "$BENCH_TMP/nginx$W.conf" <<CONF
worker_processes $W;
pid $BENCH_TMP/nginx$W/nginx.pid;
error_log $BENCH_TMP/nginx$W/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $BENCH_TMP/nginx$W/body;
  proxy_temp_path $BENCH_TMP/nginx$W/proxy;
  upstream sink { server 127.0.0.1:$SINK_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$PORT reuseport;
    location / { proxy_pass http://sink; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
        "$NGINX" -c "$BENCH_TMP/nginx$W.conf" -g 'daemon off;' & PID=$!; BENCH_PIDS+=($PID)
        wait_port "$PORT"
        wrk2_run "http://127.0.0.1:$PORT/orders" "$LUA" "$PID" >/dev/null
        NGX_PIDS="$PID $(pgrep -d ' ' -P "$PID" || true)"
        read -r RPS[ngx$W] P99[ngx$W] CPU[ngx$W] < <(wrk2_run "http://127.0.0.1:$PORT/orders" "$LUA" "$NGX_PIDS")
        kill "$PID"; wait "$PID" 2>/dev/null || true
    done
fi

echo "800-byte JSON POST with PI, wrk -t2 -c$CONNS -d$DURATION, $(nproc) cores shared by wrk, sink and proxy"
echo "cores = CPU used during the run by proxy / sink / wrk / the whole machine (out of $(nproc));"
echo "the machine's figure above the sum of the first three is other work competing for the cores;"
echo "per core = req/s per core the proxy used: equal for 1 and 2 workers means no contention"
printf '%-36s %9s %6s %20s %8s %9s %6s %20s %8s %6s\n' "" "1w req/s" "p99ms" "cores" "per core" \
       "2w req/s" "p99ms" "cores" "per core" "2w/1w"
row() { awk -v n="$1" -v a="$2" -v b="$3" -v e="$4" -v c="$5" -v d="$6" -v f="$7" \
        'BEGIN { split(e, x, "/"); split(f, y, "/");
                 printf "%-36s %9s %6s %20s %8.0f %9s %6s %20s %8.0f %5.2fx\n", n, a, b, e,
                        (x[1] > 0 ? a / x[1] : 0), c, d, f, (y[1] > 0 ? c / y[1] : 0), (a > 0 ? c / a : 0) }'; }
row "bordergate pass-through (domestic)" "${RPS[pt1]}" "${P99[pt1]}" "${CPU[pt1]}" "${RPS[pt2]}" "${P99[pt2]}" "${CPU[pt2]}"
row "bordergate full (abroad, strict audit)" "${RPS[full1]}" "${P99[full1]}" "${CPU[full1]}" "${RPS[full2]}" "${P99[full2]}" "${CPU[full2]}"
row "bordergate full (abroad, relaxed audit)" "${RPS[rel1]}" "${P99[rel1]}" "${CPU[rel1]}" "${RPS[rel2]}" "${P99[rel2]}" "${CPU[rel2]}"
row "bordergate full, 13 KB body (relaxed)" "${RPS[big1]}" "${P99[big1]}" "${CPU[big1]}" "${RPS[big2]}" "${P99[big2]}" "${CPU[big2]}"
if [ -n "$NGINX" ]; then
    row "nginx proxy_pass (control)" "${RPS[ngx1]}" "${P99[ngx1]}" "${CPU[ngx1]}" "${RPS[ngx2]}" "${P99[ngx2]}" "${CPU[ngx2]}"
fi
