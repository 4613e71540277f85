#!/usr/bin/env bash
# clang-tidy over every product source (issue 18): the checks are the repo's
# .clang-tidy (bugprone-* and clang-analyzer-*, with the exclusions it lists
# and why). Zero findings is the bar: any warning or error fails.
#
#   scripts/clang-tidy.sh [BUILD_DIR]   (default: build-tidy)
#
# BUILD_DIR needs a compile_commands.json; when it has none the script
# configures it (cmake -DCMAKE_EXPORT_COMPILE_COMMANDS=ON, no build needed:
# the product sources include no generated header). Runs two clang-tidy
# processes at a time (CLANG_TIDY_JOBS to change it), one file each: with
# several files in one process, clang 14's valist.Uninitialized check
# reports every vsnprintf after the first file (a false positive). About
# five CPU minutes in all: under three minutes on two idle cores. Prints
# each finding once (a finding in a header is reported by every file that
# includes it) and exits 1 when there is any, 0 otherwise. A true false
# positive is silenced on its line with NOLINT(check-name) and a reason
# next to it.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
BUILD=${1:-build-tidy}
JOBS=${CLANG_TIDY_JOBS:-2}
DIRS="common store config proxy geo inspect policy audit replay cli"

command -v clang-tidy >/dev/null || { echo "clang-tidy is not installed"; exit 1; }
if [ ! -f "$BUILD/compile_commands.json" ]; then
    cmake -S "$ROOT" -B "$BUILD" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null || exit 1
fi

# Headers in the product folders are checked through the files that include them.
header_filter="^$ROOT/($(tr ' ' '|' <<<"$DIRS"))/"

# Largest first, so that the longest analyses do not start last.
files=()
for d in $DIRS; do
    for f in "$d"/*.c; do [ -e "$f" ] && files+=("$f"); done
done
mapfile -t files < <(ls -S "${files[@]}")

out=$(mktemp)
trap 'rm -f "$out"' EXIT
printf '%s\n' "${files[@]}" |
    xargs -P"$JOBS" -n1 clang-tidy -p "$BUILD" --quiet --header-filter="$header_filter" >"$out" 2>/dev/null
rc=$?

# One line per finding: "file:line:col: warning: text [check]".
findings=$(grep -E '^[^ ].*:[0-9]+:[0-9]+: (warning|error): ' "$out" | sed "s|^$ROOT/||" | sort -u)
if [ -n "$findings" ]; then
    echo "$findings"
    echo "clang-tidy: $(wc -l <<<"$findings") finding(s) in ${#files[@]} files"
    exit 1
fi
if [ "$rc" -ne 0 ]; then
    # No finding printed but clang-tidy failed (a compile error it could not
    # report as a finding, or a missing compile command): show its output.
    cat "$out"
    echo "clang-tidy: failed (exit $rc) without a finding"
    exit 1
fi
echo "clang-tidy: no findings in ${#files[@]} files"
