#!/usr/bin/env bash
# Offline replay speed and memory: `bordergate replay` over a generated
# 100,000-entry HAR (the W-KING pack's recorded requests, varied: six
# routes, JSON bodies with device ids, phone numbers, e-mails, IPs, GPS
# points, batches; recorded responses kept in the file) against the W-KING
# pack, then over a ~1 GB HAR of the same mix made on the fly in /tmp
# (deleted after). Prints entries/s with the ratio to the bar (20,000/s)
# and max RSS for both files: memory must not grow with the file size.
#
#   bench/replay_bench.sh [ENTRIES] [BIG_MB]      (defaults 100000 and 1024)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
ENTRIES=${1:-100000}
BIG_MB=${2:-1024}
BAR=20000

export BG_PSEUDONYM_KEY=$(printf '5a%.0s' $(seq 32))
export BG_SUBJECT_KEY=$(printf '6b%.0s' $(seq 32))
export BG_AUDIT_KEY=$(printf '7c%.0s' $(seq 32))
PACK=$BG_ROOT/config/packs/wking.json
# The pack without its consent registry path: no consent holds (the
# slowest path: every finding goes through the whole basis order).
python3 - "$PACK" "$BENCH_TMP/policy.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["consent"].pop("registry", None)
json.dump(c, open(sys.argv[2], "w"))
PY

gen() { # gen OUT ENTRIES|-MB
    python3 - "$BG_ROOT/tests/traffic/packs/wking.har" "$1" "$2" <<'PY'
import json, random, sys
src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
tpl = json.load(open(src))["log"]["entries"]
rnd = random.Random(7)
def vary(e, i):
    e = json.loads(json.dumps(e))
    r = e["request"]
    if "postData" in r and r["postData"].get("text"):
        t = r["postData"]["text"]
        # other people, same shapes: change digits that are not part of keys
        t = t.replace("3001", "%04d" % (i % 10000)).replace("1380013", "13%05d" % (i % 100000))
        r["postData"]["text"] = t
    return e
limit_bytes = -n * 1024 * 1024 if n < 0 else None
with open(out, "w") as f:
    f.write('{"log": {"version": "1.2", "creator": {"name": "replay_bench", "version": "1"}, "pages": [],\n "entries": [\n')
    i = size = 0
    while (limit_bytes is None and i < n) or (limit_bytes is not None and size < limit_bytes):
        s = json.dumps(vary(tpl[i % len(tpl)], i), indent=1)
        if i:
            s = ",\n" + s
        f.write(s)
        size += len(s)
        i += 1
    f.write("\n]}}\n")
print(i)
PY
}

run() { # run HAR -> "ENTRIES SECONDS MAXRSS_KB CPU_SECONDS"
    /usr/bin/time -v -o "$BENCH_TMP/time.txt" "$BG_BIN" replay --config "$BENCH_TMP/policy.json" --har "$1" \
        >/dev/null 2>"$BENCH_TMP/stderr.txt" || { cat "$BENCH_TMP/stderr.txt" >&2; exit 1; }
    local n secs rss
    n=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["summary"]["entries"])' "$BENCH_TMP/stderr.txt")
    secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$BENCH_TMP/time.txt")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$BENCH_TMP/time.txt")
    cpu=$(awk -F': ' '/User time|System time/ {s+=$2} END {print s}' "$BENCH_TMP/time.txt")
    echo "$n $secs $rss $cpu"
}

echo "generating $ENTRIES entries..." >&2
gen "$BENCH_TMP/small.har" "$ENTRIES" >/dev/null
SMALL_MB=$(( $(stat -c %s "$BENCH_TMP/small.har") / 1048576 ))
read -r n1 s1 r1 c1 < <(run "$BENCH_TMP/small.har")
rate1=$(python3 -c "print(round($n1 / $s1))")
printf 'replay %d entries (%d MB HAR): %.2f s, %d entries/s (%.2fx the %d/s bar; %d entries per CPU second), max RSS %d KB\n' \
    "$n1" "$SMALL_MB" "$s1" "$rate1" "$(python3 -c "print($rate1 / $BAR)")" "$BAR" \
    "$(python3 -c "print(round($n1 / $c1))")" "$r1"
rm -f "$BENCH_TMP/small.har"

if [ "$BIG_MB" -gt 0 ]; then
    echo "generating ~$BIG_MB MB..." >&2
    big=$(gen "$BENCH_TMP/big.har" "-$BIG_MB")
    BIGSZ=$(( $(stat -c %s "$BENCH_TMP/big.har") / 1048576 ))
    read -r n2 s2 r2 c2 < <(run "$BENCH_TMP/big.har")
    rm -f "$BENCH_TMP/big.har"
    rate2=$(python3 -c "print(round($n2 / $s2))")
    printf 'replay %d entries (%d MB HAR): %.2f s, %d entries/s, max RSS %d KB (%.2fx the %d MB file'"'"'s RSS for %.0fx the bytes)\n' \
        "$n2" "$BIGSZ" "$s2" "$rate2" "$r2" "$(python3 -c "print($r2 / $r1)")" "$SMALL_MB" \
        "$(python3 -c "print($BIGSZ / max($SMALL_MB, 1))")"
    [ "$big" = "$n2" ] || { echo "bench: generated $big entries, replayed $n2" >&2; exit 1; }
fi
