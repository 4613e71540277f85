#!/usr/bin/env bash
# CPU per request, throughput and p99: bordergate vs nginx as operators run
# it (upstream keep-alive), one worker each, same upstream (bordergate sink),
# same wrk load (bench/post800.lua: 800-byte JSON POSTs carrying a name,
# mobile, e-mail and address). Three sides:
#   nginx        proxy_pass to `upstream { keepalive 64; }`, HTTP/1.1, Connection ""
#   passthrough  bordergate, destination domestic (routed, geo-checked, recorded, not inspected)
#   full         bordergate, destination abroad: inspection, decision, the
#                mobile and e-mail de-identified, the body rewritten, the
#                record fsynced before forwarding (audit.durability "strict")
# Each side runs ROUNDS times, interleaved (A B C A B C ...), so drift on a
# shared machine hits every side alike. Per run and as the median: req/s,
# p99, and CPU µs per request of the proxy process (all threads: utime+stime
# from /proc/PID/stat over the run, divided by the requests wrk completed).
# CPU per request is the figure to steer by: throughput moves with whatever
# else the machine is doing, CPU per request much less.
#
#   bench/proxy_vs_nginx.sh [DURATION] [CONNECTIONS] [ROUNDS]   (default 10s 50 2)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
DURATION=${1:-10s}
CONNS=${2:-50}
ROUNDS=${3:-2}
command -v wrk >/dev/null || { echo "bench: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "bench: nginx is not installed" >&2; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
HZ=$(getconf CLK_TCK)

SINK_PORT=$(free_port); BG_PORT=$(free_port); NGX_PORT=$(free_port)
"$BG_BIN" sink --listen 127.0.0.1:$SINK_PORT >/dev/null 2>&1 & BENCH_PIDS+=($!)
"$BG_BIN" sink --listen 127.0.0.2:$SINK_PORT >/dev/null 2>&1 & BENCH_PIDS+=($!)
wait_port $SINK_PORT

bg_config bg 1 "$BG_PORT" strict
mkdir -p "$BENCH_TMP/nginx"
cat > "$BENCH_TMP/nginx.conf" <<CONF
worker_processes 1;
pid $BENCH_TMP/nginx/nginx.pid;
error_log $BENCH_TMP/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $BENCH_TMP/nginx/body;
  proxy_temp_path $BENCH_TMP/nginx/proxy;
  upstream up { server 127.0.0.1:$SINK_PORT; keepalive 64; }
  server {
    listen 127.0.0.1:$NGX_PORT;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF

"$BG_BIN" run --config "$BENCH_TMP/bg.json" >"$BENCH_TMP/bg.log" 2>&1 & BG_PID=$!; BENCH_PIDS+=($BG_PID)
wait_port $BG_PORT
"$NGINX" -c "$BENCH_TMP/nginx.conf" -g 'daemon off;' & NGX_PID=$!; BENCH_PIDS+=($NGX_PID)
wait_port $NGX_PORT
# nginx's master does no proxying, but count it too: all of its processes.
NGX_PIDS="$NGX_PID $(pgrep -d ' ' -P "$NGX_PID" || true)"

LUA="$BG_ROOT/bench/post800.lua"
LUA_DOM="$BENCH_TMP/post800-domestic.lua"
sed 's/api.partner.example/api.domestic.example/' "$LUA" > "$LUA_DOM"
# Check the full pipeline really de-identifies before measuring it.
resp=$(curl -s -w '\n%{http_code}' -H 'Host: api.partner.example' -H 'Content-Type: application/json' \
  -d '{"order_id":"A1","customer":{"name":"Zhang Wei","phone":"13812345678"}}' "http://127.0.0.1:$BG_PORT/orders")
[ "$(tail -n1 <<<"$resp")" = 200 ] || { echo "bench: full pipeline answered $(tail -n1 <<<"$resp"), not 200" >&2; cat "$BENCH_TMP/bg.log" >&2; exit 1; }

cpu_ticks() { # PID... -> user+system clock ticks of all their threads so far
    local t=0 p f
    for p in "$@"; do read -r -a f < "/proc/$p/stat"; t=$((t + f[13] + f[14])); done
    echo "$t"
}

# measure URL LUA "PIDS" -> "RPS P99_MS CPU_US_PER_REQUEST"
measure() {
    local out c0 c1 reqs rps p99
    # shellcheck disable=SC2086
    c0=$(cpu_ticks $3)
    out=$(wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s "$2" "$1")
    # shellcheck disable=SC2086
    c1=$(cpu_ticks $3)
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}' <<<"$out")
    local non2xx
    non2xx=$(awk '/Non-2xx/ {print $4}' <<<"$out")
    if [ -n "$non2xx" ]; then echo "bench: $non2xx non-2xx responses from $1" >&2; fi
    awk -v r="$rps" -v p="$p99" -v t=$((c1 - c0)) -v hz="$HZ" -v n="$reqs" \
        'BEGIN {printf "%.0f %.2f %.1f\n", r, p, (n > 0 ? t / hz * 1e6 / n : 0)}'
}

# Warm up (DNS, pools, page cache), then interleave the sides.
measure "http://127.0.0.1:$BG_PORT/orders" "$LUA" "$BG_PID" >/dev/null
measure "http://127.0.0.1:$NGX_PORT/orders" "$LUA" "$NGX_PIDS" >/dev/null
measure "http://127.0.0.1:$BG_PORT/orders" "$LUA_DOM" "$BG_PID" >/dev/null

echo "800-byte JSON POST with PI, wrk -t1 -c$CONNS -d$DURATION, one worker each, same sink upstream, $ROUNDS rounds interleaved"
printf '%-5s %-46s %9s %8s %12s\n' "round" "side" "req/s" "p99 ms" "CPU us/req"
RES="$BENCH_TMP/results"
: > "$RES"
for r in $(seq 1 "$ROUNDS"); do
    for side in nginx pt full; do
        case $side in
            nginx) name="nginx, upstream keep-alive"; line=$(measure "http://127.0.0.1:$NGX_PORT/orders" "$LUA" "$NGX_PIDS") ;;
            pt) name="bordergate pass-through (domestic)"; line=$(measure "http://127.0.0.1:$BG_PORT/orders" "$LUA_DOM" "$BG_PID") ;;
            full) name="bordergate full (abroad, strict audit)"; line=$(measure "http://127.0.0.1:$BG_PORT/orders" "$LUA" "$BG_PID") ;;
        esac
        echo "$side $line" >> "$RES"
        read -r a b c <<<"$line"
        printf '%-5s %-46s %9s %8s %12s\n' "$r" "$name" "$a" "$b" "$c"
    done
done

median() { # SIDE COLUMN(2=rps 3=p99 4=cpu) -> median over the rounds
    awk -v s="$1" -v c="$2" '$1==s {print $c}' "$RES" | sort -g |
        awk '{v[NR]=$1} END {if (NR % 2) print v[(NR+1)/2]; else printf "%.2f\n", (v[NR/2]+v[NR/2+1])/2}'
}
echo
echo "median of $ROUNDS runs"
printf '%-46s %9s %8s %12s %14s %10s\n' "" "req/s" "p99 ms" "CPU us/req" "CPU vs nginx" "p99 vs nginx"
N_CPU=$(median nginx 4); N_P99=$(median nginx 3)
for side in nginx pt full; do
    case $side in
        nginx) name="nginx, upstream keep-alive" ;;
        pt) name="bordergate pass-through (domestic)" ;;
        full) name="bordergate full (abroad, strict audit)" ;;
    esac
    awk -v n="$name" -v a="$(median $side 2)" -v b="$(median $side 3)" -v c="$(median $side 4)" \
        -v nc="$N_CPU" -v np="$N_P99" \
        'BEGIN {printf "%-46s %9.0f %8.2f %12.1f %13.2fx %9.2fx\n", n, a, b, c, c / nc, b / np}'
done
awk -v pc="$(median pt 4)" -v fc="$(median full 4)" -v fp="$(median full 3)" -v nc="$N_CPU" -v np="$N_P99" 'BEGIN {
  printf "bars: pass-through CPU/req %.2fx (<= 1.30x: %s), full CPU/req %.2fx (<= 2.00x: %s), full p99 %.2fx (<= 1.50x: %s)\n",
    pc/nc, (pc/nc <= 1.3 ? "met" : "NOT met"), fc/nc, (fc/nc <= 2.0 ? "met" : "NOT met"), fp/np, (fp/np <= 1.5 ? "met" : "NOT met") }'
