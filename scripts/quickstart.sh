#!/usr/bin/env bash
# One command for a new user (as root on Debian 12): install what is missing,
# build, and run bordergate on its embedded defaults with the quick-start
# configuration and two local demo upstreams. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
BIN=$ROOT/build/bordergate

OUT=$ROOT/out/quickstart
mkdir -p "$OUT"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

"$BIN" sink --listen 127.0.0.1:9101 --name payments-partner --record "$OUT/payments.jsonl" >/dev/null &
PIDS+=($!)
"$BIN" sink --listen 127.0.0.1:9102 --name sms-gateway --record "$OUT/sms.jsonl" >/dev/null &
PIDS+=($!)
"$BIN" check --config config/quickstart.json

cat <<TXT

bordergate is starting on http://127.0.0.1:8080 (admin: http://127.0.0.1:9901).
Demo upstreams: payments-partner on :9101, sms-gateway on :9102; what reaches
them is recorded in $OUT/*.jsonl.

Try, in another terminal:
  curl -i -H 'Host: api.payments-partner.example' -H 'Content-Type: application/json' \\
       -d '{"order_id":"A-1001","amount":12.5}' http://127.0.0.1:8080/v1/charges
  curl -i -H 'Host: unknown.example' http://127.0.0.1:8080/      # refused: not an open proxy
  curl -s http://127.0.0.1:9901/healthz ; curl -s http://127.0.0.1:9901/stats
  tail -n1 $OUT/payments.jsonl                                     # what the upstream received

Press Ctrl-C to stop.
TXT
"$BIN" run --config config/quickstart.json &
PIDS+=($!)
wait "${PIDS[-1]}"
