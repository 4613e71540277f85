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
