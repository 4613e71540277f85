#!/usr/bin/env bash
# Install what is missing, build, and run every test (as root on Debian 12):
#   0. formatting (clang-format, .clang-format), cppcheck and clang-tidy
#      (.clang-tidy) over the sources (warnings are failures), banned
#      functions, folder layering
#   1. release build, warnings as errors: unit + integration tests (ctest)
#   2. AddressSanitizer + UndefinedBehaviorSanitizer build: the same tests
#   3. libFuzzer targets, a short run each over the seed corpus
#   4. valgrind: an integration run of the proxy with leak checking
# Ends with one line "tests: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
JOBS=$(nproc)
PASSED=0
FAILED=0
FAILED_PHASES=()

scripts/deps.sh --test || exit 1

phase() { echo; echo "=== $*"; }

# ctest_phase NAME BUILD_DIR [ctest args...]: runs ctest, adds up its counts.
ctest_phase() {
    local name=$1 dir=$2; shift 2
    local log; log=$(mktemp)
    ctest --test-dir "$dir" --output-on-failure -j"$JOBS" "$@" 2>&1 | tee "$log"
    local line total failed
    line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -1)
    if [ -z "$line" ]; then
        FAILED=$((FAILED + 1)); FAILED_PHASES+=("$name (no ctest summary)")
    else
        failed=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
        total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
        PASSED=$((PASSED + total - failed)); FAILED=$((FAILED + failed))
        [ "$failed" -eq 0 ] || FAILED_PHASES+=("$name")
    fi
    rm -f "$log"
}

# step NAME CMD...: one pass/fail unit that is not a ctest run.
step() {
    local name=$1; shift
    if "$@"; then PASSED=$((PASSED + 1)); else FAILED=$((FAILED + 1)); FAILED_PHASES+=("$name"); fi
}

build() { # build DIR CMAKE_ARGS...
    local dir=$1; shift
    cmake -S "$ROOT" -B "$dir" -DBG_WERROR=ON "$@" >/dev/null && cmake --build "$dir" -j"$JOBS"
}

phase "0. formatting (clang-format), static analysis (cppcheck: warnings and portability; clang-tidy: bugprone, analyzer), banned functions"
static_analysis() {
    command -v cppcheck >/dev/null || { echo "cppcheck is not installed"; return 1; }
    cppcheck --quiet --enable=warning,portability --inline-suppr --std=c11 -I . -D_GNU_SOURCE \
        --error-exitcode=1 common config proxy geo inspect policy audit replay cli store
}
step "cppcheck" static_analysis
# Its own configure-only tree for compile_commands.json; under 3 minutes on 2 idle cores.
step "clang-tidy" scripts/clang-tidy.sh build-tidy

formatting() {
    command -v clang-format >/dev/null || { echo "clang-format is not installed"; return 1; }
    # shellcheck disable=SC2046
    clang-format --dry-run -Werror $(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*')
}
step "clang-format" formatting

# strcpy, sprintf, strcat, atoi, strtok in product code (comments and string
# literals aside): each has a bounded or checked form. The self-test first,
# so that a broken pattern cannot pass everything.
banned_functions() {
    python3 scripts/check-banned.py --self-test && python3 scripts/check-banned.py
}
step "banned functions" banned_functions

# Folder layering: no cycle among the product folders (#include "dir/..."),
# the known back edges aside (scripts/check-layers.py lists them and why).
layering() {
    python3 scripts/check-layers.py --self-test && python3 scripts/check-layers.py
}
step "folder layering" layering

phase "1. release build (warnings are errors) and tests"
if build build -DCMAKE_BUILD_TYPE=RelWithDebInfo; then
    ctest_phase release build
else
    FAILED=$((FAILED + 1)); FAILED_PHASES+=("release build")
fi

phase "2. AddressSanitizer + UndefinedBehaviorSanitizer build and tests"
if build build-asan -DBG_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug; then
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest_phase sanitizers build-asan
else
    FAILED=$((FAILED + 1)); FAILED_PHASES+=("sanitizer build")
fi

phase "3. fuzz targets (short runs; see fuzz/README.md for long ones)"
fuzz_all() {
    CC=clang build build-fuzz -DBG_FUZZ=ON -DBG_TESTS=OFF -DBG_SANITIZE=ON || return 1
    local ok=0
    for f in build-fuzz/fuzz_*; do
        [ -x "$f" ] || continue
        local name; name=$(basename "$f")
        local corpus="fuzz/corpus/${name#fuzz_}"
        local work; work=$(mktemp -d)
        [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/ 2>/dev/null
        echo "fuzz: $name for ${BG_FUZZ_SECONDS:-20}s"
        if ! "$f" -max_total_time="${BG_FUZZ_SECONDS:-20}" -timeout=10 -rss_limit_mb=2048 \
                -print_final_stats=0 "$work" >"$work.log" 2>&1; then
            echo "fuzz: $name FAILED"; tail -40 "$work.log"; ok=1
        fi
        rm -rf "$work" "$work.log"
    done
    return $ok
}
step "fuzz" fuzz_all

phase "4. valgrind integration run"
if [ -x build/bordergate ] && command -v valgrind >/dev/null; then
    BG_VALGRIND=1 ctest_phase valgrind build -R 'it\.test_proxy'
fi

echo
if [ ${#FAILED_PHASES[@]} -gt 0 ]; then
    echo "failed: ${FAILED_PHASES[*]}"
fi
echo "tests: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
