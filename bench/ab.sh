#!/usr/bin/env bash
# A/B of two bordergate builds on this machine's noise: both run at once
# (same policy, same sink upstream, one worker each, strict audit) and are
# measured interleaved (A B A B ...) on the two sides of
# bench/proxy_vs_nginx.sh: pass-through (domestic) and full (abroad).
# Prints per run and as the median: req/s, p99 and CPU us per request of
# the proxy process (all threads), and B's CPU per request relative to A's.
#
#   bench/ab.sh BIN_A BIN_B [DURATION] [CONNECTIONS] [ROUNDS]   (default 6s 50 3)
#
# B_SED='sed expression' applies to B's policy only: the same build with a
# setting changed, e.g. B_SED='s/"durability": "strict"/"durability": "relaxed"/'.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
A=$1; B=$2
DURATION=${3:-6s}
CONNS=${4:-50}
ROUNDS=${5:-3}
command -v wrk >/dev/null || { echo "bench: wrk is not installed" >&2; exit 1; }
HZ=$(getconf CLK_TCK)
SINK_PORT=$(free_port)
"$A" sink --listen 127.0.0.1:$SINK_PORT >/dev/null 2>&1 & BENCH_PIDS+=($!)
"$A" sink --listen 127.0.0.2:$SINK_PORT >/dev/null 2>&1 & BENCH_PIDS+=($!)
wait_port $SINK_PORT
declare -A PORT PID
for v in A B; do
    PORT[$v]=$(free_port)
    bg_config "bg$v" 1 "${PORT[$v]}" strict
    mkdir -p "$BENCH_TMP/$v"
    # Each build its own audit directory.
    sed "s|\"durability\": \"strict\"|\"durability\": \"strict\", \"directory\": \"$BENCH_TMP/$v/audit\"|" \
        "$BENCH_TMP/bg$v.json" > "$BENCH_TMP/$v/bg.json"
    if [ $v = B ] && [ -n "${B_SED:-}" ]; then sed -i "$B_SED" "$BENCH_TMP/$v/bg.json"; fi
    bin=$A; [ $v = B ] && bin=$B
    (cd "$BENCH_TMP/$v" && exec "$bin" run --config "$BENCH_TMP/$v/bg.json" >"$BENCH_TMP/$v/bg.log" 2>&1) &
    PID[$v]=$!; BENCH_PIDS+=(${PID[$v]})
    wait_port "${PORT[$v]}"
done
LUA="$BG_ROOT/bench/post800.lua"
LUA_DOM="$BENCH_TMP/post800-domestic.lua"
sed 's/api.partner.example/api.domestic.example/' "$LUA" > "$LUA_DOM"

cpu_ticks() { local f; read -r -a f < "/proc/$1/stat"; echo $((f[13] + f[14])); }
measure() { # PORT LUA PID -> "RPS P99_MS CPU_US"
    local out c0 c1 reqs rps p99
    c0=$(cpu_ticks "$3")
    out=$(wrk -t1 -c"$CONNS" -d"$DURATION" --latency -s "$2" "http://127.0.0.1:$1/orders")
    c1=$(cpu_ticks "$3")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}' <<<"$out")
    if grep -q Non-2xx <<<"$out"; then echo "bench: non-2xx answers on port $1" >&2; fi
    awk -v r="$rps" -v p="$p99" -v t=$((c1 - c0)) -v hz="$HZ" -v n="$reqs" \
        'BEGIN {printf "%.0f %.2f %.1f\n", r, p, (n > 0 ? t / hz * 1e6 / n : 0)}'
}
for v in A B; do
    measure "${PORT[$v]}" "$LUA" "${PID[$v]}" >/dev/null
    measure "${PORT[$v]}" "$LUA_DOM" "${PID[$v]}" >/dev/null
done
RES="$BENCH_TMP/results"; : > "$RES"
printf '%-5s %-4s %-3s %9s %8s %12s\n' round side ab "req/s" "p99 ms" "CPU us/req"
for r in $(seq 1 "$ROUNDS"); do
    for side in pt full; do
        lua=$LUA; [ $side = pt ] && lua=$LUA_DOM
        for v in A B; do
            line=$(measure "${PORT[$v]}" "$lua" "${PID[$v]}")
            echo "$side $v $line" >> "$RES"
            printf '%-5s %-4s %-3s %9s %8s %12s\n' "$r" $side $v $line
        done
    done
done
median() { awk -v s="$1" -v v="$2" -v c="$3" '$1==s && $2==v {print $c}' "$RES" | sort -g |
    awk '{x[NR]=$1} END {if (NR % 2) print x[(NR+1)/2]; else printf "%.2f\n", (x[NR/2]+x[NR/2+1])/2}'; }
echo; echo "median of $ROUNDS runs (A=$A B=$B)"
printf '%-4s %-3s %9s %8s %12s\n' side ab "req/s" "p99 ms" "CPU us/req"
for side in pt full; do
    for v in A B; do printf '%-4s %-3s %9s %8s %12s\n' $side $v "$(median $side $v 3)" "$(median $side $v 4)" "$(median $side $v 5)"; done
    awk -v a="$(median $side A 5)" -v b="$(median $side B 5)" -v s=$side 'BEGIN {printf "%-4s B/A CPU per request %.3f\n", s, b / a}'
done
