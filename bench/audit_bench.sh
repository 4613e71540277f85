#!/usr/bin/env bash
# What durable audit costs: the full pipeline (abroad: inspect, decide,
# de-identify) with the audit log disabled, strict (fsync before forwarding,
# group commit) and relaxed (fsync every 200 ms), at two concurrency levels,
# plus the disk's own fdatasync latency, which bounds strict mode: with C
# connections each waiting for a group commit of latency L, throughput is at
# most C / L (Little's law).
#
#   bench/audit_bench.sh [DURATION]          (default 8s)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
DURATION=${1:-8s}
command -v wrk >/dev/null || { echo "bench: wrk is not installed" >&2; exit 1; }

SINK_PORT=$(free_port)
"$BG_BIN" sink --listen 127.0.0.1:$SINK_PORT >/dev/null 2>&1 & BENCH_PIDS+=($!)
wait_port $SINK_PORT

run_mode() { # run_mode NAME AUDIT_JSON CONNS -> "RPS P99 FSYNC_P50 FSYNC_P99 BATCH"
    local name=$1 audit=$2 conns=$3 port admin
    port=$(free_port); admin=$(free_port)
    cat > "$BENCH_TMP/$name.json" <<JSON
{
  "listen": "127.0.0.1:$port", "admin": {"listen": "127.0.0.1:$admin"}, "workers": 1,
  "resolve": {"api.partner.example": "127.0.0.1"},
  "geo": {"overrides": {"cidrs": {"127.0.0.1/32": "US"}}},
  "recipients": {"partner": {"legal_entity": "Partner Inc", "relationship": "third_party",
      "purposes": ["delivery"], "mechanism": {"type": "standard_contract", "reference": "BENCH-SC-1"}}},
  "operators": {"cn_mobile": {"op": "mask", "keep_start": 3, "keep_end": 4},
                "email": {"op": "mask", "keep_start": 1, "keep_end": 0}},
  "rules": [{"id": "delivery", "categories": ["person_name", "address"], "bases": ["contract"], "fallback": "deidentify"},
            {"id": "contact", "categories": ["cn_mobile", "email"], "bases": ["consent"], "fallback": "deidentify", "accept_pseudonymized": true}],
  "routes": [{"id": "bench", "match": {"host": "api.partner.example"},
              "upstream": "http://api.partner.example:$SINK_PORT", "allow_private_addresses": true,
              "recipient": "partner", "purpose": "delivery",
              "bases": {"contract": {"purpose": "delivery", "necessary": ["person_name", "address"]}}}],
  "audit": $audit,
  "log": {"level": "error"}
}
JSON
    "$BG_BIN" run --config "$BENCH_TMP/$name.json" >"$BENCH_TMP/$name.log" 2>&1 &
    local pid=$!
    wait_port "$port"
    wrk_run "http://127.0.0.1:$port/orders" "$BG_ROOT/bench/post800.lua" 2s "$conns" >/dev/null
    local r; r=$(wrk_run "http://127.0.0.1:$port/orders" "$BG_ROOT/bench/post800.lua" "$DURATION" "$conns")
    local st; st=$(curl -s "http://127.0.0.1:$admin/stats")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    python3 - "$r" "$st" <<'PY'
import json, sys
rps, p99 = sys.argv[1].split()
st = json.loads(sys.argv[2]).get("audit") or {}
batch = st["records_written"] / st["batches"] if st.get("batches") else 0
print(rps, p99, st.get("fsync_us_p50", 0) / 1000, st.get("fsync_us_p99", 0) / 1000, round(batch, 1))
PY
}

DISK=$(python3 - "$BENCH_TMP" <<'PY'
import os, sys, time
fd = os.open(os.path.join(sys.argv[1], "fsync.probe"), os.O_CREAT | os.O_WRONLY, 0o600)
t = []
for _ in range(200):
    os.write(fd, b"x" * 800)
    a = time.perf_counter(); os.fdatasync(fd); t.append((time.perf_counter() - a) * 1000)
t.sort(); print("%.2f %.2f" % (t[100], t[197]))
PY
)
echo "disk: fdatasync after an 800-byte append: p50 ${DISK% *} ms, p99 ${DISK#* } ms (the floor for strict mode)"
printf '%-8s %-9s %10s %8s %12s %12s %8s\n' conns mode "req/s" "p99 ms" "fsync p50" "fsync p99" "batch"
for conns in 50 400; do
    read -r N_RPS N_P99 _ _ _ < <(run_mode off '{"enabled": false}' $conns)
    read -r S_RPS S_P99 S_F50 S_F99 S_B < <(run_mode strict '{"durability": "strict"}' $conns)
    read -r R_RPS R_P99 R_F50 R_F99 R_B < <(run_mode relaxed '{"durability": "relaxed"}' $conns)
    printf '%-8s %-9s %10s %8s %12s %12s %8s\n' $conns "no audit" "$N_RPS" "$N_P99" - - -
    printf '%-8s %-9s %10s %8s %12s %12s %8s\n' $conns strict "$S_RPS" "$S_P99" "${S_F50} ms" "${S_F99} ms" "$S_B"
    printf '%-8s %-9s %10s %8s %12s %12s %8s\n' $conns relaxed "$R_RPS" "$R_P99" "${R_F50} ms" "${R_F99} ms" "$R_B"
    awk -v s="$S_RPS" -v r="$R_RPS" -v n="$N_RPS" -v sp="$S_P99" -v np="$N_P99" -v c=$conns 'BEGIN {
      printf "  c=%d: strict keeps %.0f%% of the throughput without audit (bar 90%%), relaxed %.0f%%; strict adds %.1f ms at p99\n",
             c, 100*s/n, 100*r/n, sp-np }'
done
