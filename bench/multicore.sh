#!/usr/bin/env bash
# Multi-core scaling: bordergate with 1 and then 2 workers (same binary, same
# config but "workers"), and nginx with 1 and 2 worker processes as the
# control, against the same `bordergate sink` upstream and the same wrk load
# (800-byte JSON POSTs with PI, bench/post800.lua):
#   passthrough  bordergate, destination domestic (routed, geo-checked, recorded)
#   full         bordergate, destination abroad: inspect, decide, mask the
#                mobile and e-mail, rewrite, fsync the record before forwarding
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
[ -x "$NGINX" ] || NGINX=""

# wrk2_run URL LUA -> "RPS P99_MS" with two wrk threads (one cannot load two workers).
wrk2_run() {
    local out
    out=$(wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s "$2" "$1")
    local non2xx
    non2xx=$(awk '/Non-2xx/ {print $4}' <<<"$out")
    if [ -n "$non2xx" ]; then echo "bench: $non2xx non-2xx responses from $1" >&2; fi
    awk '/^Requests\/sec:/ {rps=$2}
         $1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; p=v}
         END {print rps, p}' <<<"$out"
}

SINK_PORT=$(free_port)
"$BG_BIN" sink --listen 127.0.0.1:$SINK_PORT >/dev/null 2>&1 & BENCH_PIDS+=($!)
"$BG_BIN" sink --listen 127.0.0.2:$SINK_PORT >/dev/null 2>&1 & BENCH_PIDS+=($!)
wait_port $SINK_PORT

LUA="$BG_ROOT/bench/post800.lua"
LUA_DOM="$BENCH_TMP/post800-domestic.lua"
sed 's/api.partner.example/api.domestic.example/' "$LUA" > "$LUA_DOM"

# bg_config WORKERS PORT -> writes $BENCH_TMP/bg-WORKERS.json
bg_config() {
cat > "$BENCH_TMP/bg-$1.json" <<JSON
{
  "listen": "127.0.0.1:$2",
  "workers": $1,
  "resolve": {"api.partner.example": "127.0.0.1", "api.domestic.example": "127.0.0.2"},
  "geo": {"overrides": {"cidrs": {"127.0.0.1/32": "US", "127.0.0.2/32": "CN"}}},
  "recipients": {"partner": {"legal_entity": "Partner Inc", "relationship": "third_party",
      "country": "US", "purposes": ["delivery"],
      "mechanism": {"type": "standard_contract", "reference": "BENCH-SC-1"}}},
  "operators": {"cn_mobile": {"op": "mask", "keep_start": 3, "keep_end": 4},
                "email": {"op": "mask", "keep_start": 1, "keep_end": 0}},
  "rules": [{"id": "delivery", "categories": ["person_name", "address"], "bases": ["contract"],
             "fallback": "deidentify"},
            {"id": "contact", "categories": ["cn_mobile", "email"], "bases": ["consent"],
             "fallback": "deidentify"}],
  "routes": [{"id": "bench", "match": {"host": "api.partner.example"},
              "upstream": "http://api.partner.example:$SINK_PORT",
              "allow_private_addresses": true, "recipient": "partner", "purpose": "delivery",
              "bases": {"contract": {"purpose": "delivery", "necessary": ["person_name", "address"],
                                     "reference": "\$.order_id"}}},
             {"id": "domestic", "match": {"host": "api.domestic.example"},
              "upstream": "http://api.domestic.example:$SINK_PORT",
              "allow_private_addresses": true}],
  "log": {"level": "warn"}
}
JSON
}

declare -A RPS P99
for W in 1 2; do
    PORT=$(free_port)
    bg_config "$W" "$PORT"
    "$BG_BIN" run --config "$BENCH_TMP/bg-$W.json" >"$BENCH_TMP/bg-$W.log" 2>&1 &
    PID=$!; BENCH_PIDS+=($PID)
    wait_port "$PORT"
    wrk2_run "http://127.0.0.1:$PORT/orders" "$LUA" >/dev/null   # warm up (DNS, pools)
    read -r RPS[pt$W] P99[pt$W] < <(wrk2_run "http://127.0.0.1:$PORT/orders" "$LUA_DOM")
    read -r RPS[full$W] P99[full$W] < <(wrk2_run "http://127.0.0.1:$PORT/orders" "$LUA")
    kill "$PID"; wait "$PID" 2>/dev/null || true
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
        wrk2_run "http://127.0.0.1:$PORT/orders" "$LUA" >/dev/null
        read -r RPS[ngx$W] P99[ngx$W] < <(wrk2_run "http://127.0.0.1:$PORT/orders" "$LUA")
        kill "$PID"; wait "$PID" 2>/dev/null || true
    done
fi

echo "800-byte JSON POST with PI, wrk -t2 -c$CONNS -d$DURATION, $(nproc) cores shared by wrk, sink and proxy"
printf '%-46s %12s %9s %12s %9s %8s\n' "" "1w req/s" "p99 ms" "2w req/s" "p99 ms" "2w/1w"
row() { awk -v n="$1" -v a="$2" -v b="$3" -v c="$4" -v d="$5" \
        'BEGIN { printf "%-46s %12s %9s %12s %9s %7.2fx\n", n, a, b, c, d, (a > 0 ? c / a : 0) }'; }
row "bordergate pass-through (domestic)" "${RPS[pt1]}" "${P99[pt1]}" "${RPS[pt2]}" "${P99[pt2]}"
row "bordergate full (abroad: inspect+decide+fsync)" "${RPS[full1]}" "${P99[full1]}" "${RPS[full2]}" "${P99[full2]}"
if [ -n "$NGINX" ]; then
    row "nginx proxy_pass (control)" "${RPS[ngx1]}" "${P99[ngx1]}" "${RPS[ngx2]}" "${P99[ngx2]}"
fi
