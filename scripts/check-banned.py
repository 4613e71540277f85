#!/usr/bin/env python3
"""
Banned functions in product code (issue 18): strcpy, sprintf, strcat, atoi
and strtok have bounded or checked forms (memcpy with a length or snprintf,
strtol with its end pointer and range, strtok_r or manual splitting), so a
call to one of them is a finding.

    scripts/check-banned.py [DIR_OR_FILE...]
    scripts/check-banned.py --self-test

Without arguments it reads the product folders (common config proxy geo
inspect policy audit replay cli; not tests/, fuzz/, bench/). Comments and
string or character literals are skipped, so a comment may name a banned
function and a log message may quote one. Prints FILE:LINE: NAME for each
call and exits 1 if there is any, 0 otherwise. --self-test checks the
checker on planted code (CI runs it first, so a broken pattern cannot pass
everything).
"""
import os
import re
import sys

BANNED = ("strcpy", "sprintf", "strcat", "atoi", "strtok")
PRODUCT_DIRS = ("common", "config", "proxy", "geo", "inspect", "policy", "audit", "replay", "cli")
# a banned name as a whole identifier (not strtok_r, not vsnprintf)
CALL = re.compile(r"(?<![A-Za-z0-9_])(%s)(?![A-Za-z0-9_])" % "|".join(BANNED))


def code_only(text):
    """TEXT with comments and string/character literals blanked out, newlines
    kept so that line numbers stay right."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(c + re.sub(r"[^\n]", " ", text[i + 1:j - 1]) + c)
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def sources(paths):
    for p in paths:
        if os.path.isfile(p):
            yield p
            continue
        for root, _dirs, files in os.walk(p):
            for f in sorted(files):
                if f.endswith((".c", ".h")):
                    yield os.path.join(root, f)


SELF_TEST = r"""/* strcpy(a, b) in a comment, sprintf too */
static const char *msg = "atoi(\" strcat(";
int f(char *d) // sprintf(d, "x")
{
    char q = '"';
    return atoi(d) + (strtok_r(d, ",", 0) != 0) + vsnprintf(d, 1, "%s", 0) + q;
}
void g(char *a) { strcat(a, "x"); sprintf (a, "%d", 1); }
char *h(char *a) { return strtok(a, ","); }
void k(char *a) { strcpy(a, "");
}
"""
SELF_TEST_EXPECT = [(6, "atoi"), (8, "strcat"), (8, "sprintf"), (9, "strtok"), (10, "strcpy")]


def findings(text):
    """[(line, name)] of the banned calls in C source TEXT."""
    return [(lineno, m.group(1))
            for lineno, line in enumerate(code_only(text).split("\n"), 1)
            for m in CALL.finditer(line)]


def main(argv):
    if argv[1:] == ["--self-test"]:
        got = findings(SELF_TEST)
        if got != SELF_TEST_EXPECT:
            print("check-banned self-test: found %s, expected %s" % (got, SELF_TEST_EXPECT))
            return 1
        return 0
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = argv[1:] or [os.path.join(root, d) for d in PRODUCT_DIRS]
    found = 0
    for path in sources(paths):
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        for lineno, name in findings(text):
            print("%s:%d: %s is banned (use its bounded form)"
                  % (os.path.relpath(path, root), lineno, name))
            found += 1
    if found:
        print("banned functions: %d call(s)" % found)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
