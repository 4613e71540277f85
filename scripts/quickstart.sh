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
mkdir -p "$OUT/keys"
chmod 700 "$OUT/keys"
# Keys for pseudonyms, tokens, subject ids and audit checkpoints: random,
# made once, never committed.
for k in pseudonym token subject audit; do
    [ -s "$OUT/keys/$k.key" ] || (umask 077; head -c 32 /dev/urandom > "$OUT/keys/$k.key")
done
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
Demo upstreams: a payment provider "abroad" (US) on :9101 and a domestic SMS
gateway (CN) on :9102; what reaches them is recorded in $OUT/*.jsonl.
Try, in another terminal (from $ROOT):

  # 1. A payment abroad: the card and name may go (contract necessity, order
  #    reference present); the mobile has no basis, so it leaves masked.
  curl -si -H 'Host: api.payments-partner.example' -H 'Content-Type: application/json' \\
       -d '{"order_id":"A-1001","customer":{"id":"c-42","name":"Li Lei","mobile":"13812345678","card":"4111 1111 1111 1111"}}' \\
       http://127.0.0.1:8080/v1/charges
  tail -n1 $OUT/payments.jsonl          # what the provider received

  # 2. An identity number abroad without consent: blocked with 451 and the reasons.
  curl -si -H 'Host: api.payments-partner.example' -H 'Content-Type: application/json' \\
       -d '{"order_id":"A-1002","customer":{"id":"c-42","id_no":"11010519491231002X"}}' \\
       http://127.0.0.1:8080/v1/kyc

  # 3. Record the customer's separate consent, then send request 2 again: allowed.
  build/bordergate consent grant --registry $OUT/consent.jsonl --key $OUT/keys/subject.key \\
       --subject c-42 --recipient payments-partner --purpose payment --region US --sensitive \\
       --evidence app-consent-0042

  # 4. The same data to the domestic gateway is not a cross-border transfer.
  curl -si -H 'Host: sms.domestic-gateway.example' -d '{"mobile":"13812345678"}' http://127.0.0.1:8080/send

  # 5. Refused: not an open proxy.      6. The tamper-evident record of it all:
  curl -si -H 'Host: unknown.example' http://127.0.0.1:8080/
  build/bordergate audit verify $OUT/audit --key $OUT/keys/audit.key
  curl -s http://127.0.0.1:9901/healthz ; curl -s http://127.0.0.1:9901/stats

  # 7. What compliance sees: the dashboard (open in a browser) and the metrics.
  #    http://127.0.0.1:9901/dashboard/        curl -s http://127.0.0.1:9901/metrics

Press Ctrl-C to stop.
TXT
# Each proxied request holds two descriptors (client and upstream): raise the
# soft open-file limit to the hard one, as the systemd unit does with
# LimitNOFILE, so the default limits.max_connections fits.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
"$BIN" run --config config/quickstart.json &
PIDS+=($!)
wait "${PIDS[-1]}"
