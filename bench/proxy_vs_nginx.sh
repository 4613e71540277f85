#!/usr/bin/env bash
# Pass-through throughput and p99 latency: bordergate vs nginx's plain
# proxy_pass, one worker each, same upstream (bordergate sink), same wrk load
# (800-byte JSON POSTs), measured one after the other in one run.
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
wait_port $SINK_PORT

cat > "$BENCH_TMP/bg.json" <<JSON
{
  "listen": "127.0.0.1:$BG_PORT",
  "workers": 1,
  "resolve": {"api.partner.example": "127.0.0.1"},
  "routes": [{"id": "bench", "match": {"host": "api.partner.example"},
              "upstream": "http://api.partner.example:$SINK_PORT",
              "allow_private_addresses": true}],
  "log": {"level": "warn"}
}
JSON
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
# Warm up both, then measure alternately.
wrk_run "http://127.0.0.1:$BG_PORT/orders" "$LUA" 2s "$CONNS" >/dev/null
wrk_run "http://127.0.0.1:$NGX_PORT/orders" "$LUA" 2s "$CONNS" >/dev/null
read -r NGX_RPS NGX_P99 < <(wrk_run "http://127.0.0.1:$NGX_PORT/orders" "$LUA" "$DURATION" "$CONNS")
read -r BG_RPS BG_P99 < <(wrk_run "http://127.0.0.1:$BG_PORT/orders" "$LUA" "$DURATION" "$CONNS")

echo "pass-through, 800-byte JSON POST, wrk -t1 -c$CONNS -d$DURATION, one worker each"
printf '%-28s %12s %10s\n' "" "req/s" "p99 ms"
printf '%-28s %12s %10s\n' "nginx proxy_pass" "$NGX_RPS" "$NGX_P99"
printf '%-28s %12s %10s\n' "bordergate" "$BG_RPS" "$BG_P99"
awk -v a="$BG_RPS" -v b="$NGX_RPS" -v c="$BG_P99" -v d="$NGX_P99" 'BEGIN {
  printf "throughput ratio bordergate/nginx: %.2fx (bar: >= 1.00x)\n", a/b;
  printf "p99 ratio bordergate/nginx:        %.2fx (bar: <= 1.20x)\n", c/d }'
