# Shared helpers for the benchmarks: free ports, waiting, cleanup.
# Sourced by bench/*.sh; not run on its own.

BG_ROOT=${BG_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
BG_BIN=${BG_BIN:-$BG_ROOT/build/bordergate}
BENCH_TMP=$(mktemp -d /tmp/bordergate-bench.XXXXXX)
BENCH_PIDS=()

bench_cleanup() {
    for pid in "${BENCH_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$BENCH_TMP"
}
trap bench_cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_port() { # wait_port PORT
    for _ in $(seq 1 100); do
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "bench: nothing listening on port $1" >&2
    return 1
}

# wrk_run URL LUA DURATION CONNECTIONS -> prints "RPS P99_MS"
wrk_run() {
    local out
    out=$(wrk -t1 -c"$4" -d"$3" --latency -s "$2" "$1")
    local rps p99
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}' <<<"$out")
    local non2xx
    non2xx=$(awk '/Non-2xx/ {print $4}' <<<"$out")
    if [ -n "$non2xx" ]; then echo "bench: $non2xx non-2xx responses from $1" >&2; fi
    echo "$rps $p99"
}

# bg_config NAME WORKERS PORT DURABILITY -> writes $BENCH_TMP/NAME.json: the
# benchmarks' policy (a partner abroad with a contract for names and
# addresses and masks for mobile and e-mail; a domestic route), both routes
# to the sink on $SINK_PORT (127.0.0.1 counts as US, 127.0.0.2 as CN).
bg_config() {
cat > "$BENCH_TMP/$1.json" <<JSON
{
  "listen": "127.0.0.1:$3",
  "workers": $2,
  "audit": {"durability": "$4"},
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
             "fallback": "deidentify", "accept_pseudonymized": true}],
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
