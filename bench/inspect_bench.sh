#!/usr/bin/env bash
# Inspection + rewrite against jansson's own parse + dump of the same JSON
# (the bar of issue 13: <= 1.0x for 1 MB, single-digit microseconds for 800
# bytes; MB/s per core on a PI-dense and a PI-free document) and issue 15's
# detection speed (MB/s per core of bg_inspect on 8 MB PI-free and PI-dense
# API JSON).
# Builds an optimised tree (Release, no sanitizers) and runs
# bench/inspect_bench.c; see the comment at its top for what is measured.
#
#   bench/inspect_bench.sh [RUNS]          (default 30, at least 20)
#   bench/inspect_bench.sh --only DOC [N]  (for a profiler; see the .c file)
#
# BG_BENCH_BUILD overrides the build directory (default build-rel).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BG_BENCH_BUILD:-$ROOT/build-rel}
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DBG_SANITIZE=OFF -DBG_FUZZ=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target inspect_bench >/dev/null
if [ $# -eq 0 ]; then set -- 30; fi
exec "$BUILD/inspect_bench" "$@"
