#!/usr/bin/env bash
# Throughput and p99 latency: bordergate vs nginx's plain proxy_pass, one
# worker each, same upstream (bordergate sink), same wrk load (800-byte JSON
# POSTs carrying a name, mobile, e-mail and address), measured one after the
# other in one run:
#   nginx        plain proxy_pass
#   passthrough  bordergate, destination domestic (routed, geo-checked, not inspected)
#   full         bordergate, destination abroad: inspection, decision, the
#                mobile and e-mail de-identified, the body rewritten
#
#   bench/proxy_vs_nginx.sh [DURATION] [CONNECTIONS]     (default 10s 50)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
DURATION=${1:-10s}
CONNS=${2:-50}
command -v wrk >/dev/null || { echo "bench: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "bench: nginx is not installed" >&2; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

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
  server {
    listen 127.0.0.1:$NGX_PORT;
    location / { proxy_pass http://127.0.0.1:$SINK_PORT; }
  }
}
CONF

"$BG_BIN" run --config "$BENCH_TMP/bg.json" >"$BENCH_TMP/bg.log" 2>&1 & BENCH_PIDS+=($!)
wait_port $BG_PORT
"$NGINX" -c "$BENCH_TMP/nginx.conf" -g 'daemon off;' & BENCH_PIDS+=($!)
wait_port $NGX_PORT

LUA="$BG_ROOT/bench/post800.lua"
LUA_DOM="$BENCH_TMP/post800-domestic.lua"
sed 's/api.partner.example/api.domestic.example/' "$LUA" > "$LUA_DOM"
# Check the full pipeline really de-identifies before measuring it.
code=$(curl -s -o /dev/null -w '%{http_code}' \
  -H 'Host: api.partner.example' -H 'Content-Type: application/json' \
  -d '{"order_id":"A1","customer":{"name":"Zhang Wei","phone":"13812345678"}}' "http://127.0.0.1:$BG_PORT/orders")
[ "$code" = 200 ] || { echo "bench: full pipeline answered $code, not 200" >&2; cat "$BENCH_TMP/bg.log" >&2; exit 1; }
# Warm up, then measure one after the other.
wrk_run "http://127.0.0.1:$BG_PORT/orders" "$LUA" 2s "$CONNS" >/dev/null
wrk_run "http://127.0.0.1:$NGX_PORT/orders" "$LUA" 2s "$CONNS" >/dev/null
read -r NGX_RPS NGX_P99 < <(wrk_run "http://127.0.0.1:$NGX_PORT/orders" "$LUA" "$DURATION" "$CONNS")
read -r PT_RPS PT_P99 < <(wrk_run "http://127.0.0.1:$BG_PORT/orders" "$LUA_DOM" "$DURATION" "$CONNS")
read -r BG_RPS BG_P99 < <(wrk_run "http://127.0.0.1:$BG_PORT/orders" "$LUA" "$DURATION" "$CONNS")

echo "800-byte JSON POST with PI, wrk -t1 -c$CONNS -d$DURATION, one worker each, same sink upstream"
printf '%-44s %12s %10s\n' "" "req/s" "p99 ms"
printf '%-44s %12s %10s\n' "nginx proxy_pass" "$NGX_RPS" "$NGX_P99"
printf '%-44s %12s %10s\n' "bordergate pass-through (domestic)" "$PT_RPS" "$PT_P99"
printf '%-44s %12s %10s\n' "bordergate full (abroad: inspect+decide+rewrite)" "$BG_RPS" "$BG_P99"
awk -v a="$PT_RPS" -v b="$NGX_RPS" -v c="$PT_P99" -v d="$NGX_P99" -v e="$BG_RPS" -v f="$BG_P99" 'BEGIN {
  printf "pass-through/nginx: throughput %.2fx (bar >= 1.00x), p99 %.2fx (bar <= 1.20x)\n", a/b, c/d;
  printf "full/nginx:         throughput %.2fx (bar >= 1.00x), p99 %.2fx (bar <= 1.20x)\n", e/b, f/d }'
