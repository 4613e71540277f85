#!/usr/bin/env python3
"""
Folder layering (issue 18): the product folders must depend on each other
without a cycle, so that each can be read, tested and fuzzed with only the
folders below it. A folder A depends on B when a file in A has a line
`#include "B/..."`; a cycle is a set of folders that reach each other.

    scripts/check-layers.py            check the product folders
    scripts/check-layers.py --graph    print each folder's dependencies and the layer order
    scripts/check-layers.py --self-test

KNOWN_BACK_EDGES lists the dependencies that still close a cycle today, each
with the file that makes it and how it goes away. They are not counted; any
other cycle is a finding. A known edge that is gone is a finding too (delete
it from the list), so the list can only shrink. Exits 1 on a finding, 0
otherwise. --self-test checks the checker on planted trees (CI runs it
first, so a broken pattern cannot pass everything).
"""
import os
import re
import sys

PRODUCT_DIRS = ("common", "config", "proxy", "geo", "inspect", "policy", "audit", "replay", "cli")

# (from, to): why it is there, and what removes it. Removing these three
# leaves the graph acyclic; the lead deletes an entry once its edge is gone.
KNOWN_BACK_EDGES = {
    ("config", "policy"): "config/config.c calls bg_policy_load/bg_policy_free (and policy/ reads "
                          "bg_config_t): the loader that joins the two belongs above both",
    ("config", "audit"): "config/config.h includes audit/counters.h for bg_config_thresholds: "
                         "the conversion belongs in audit/counters.c",
    ("inspect", "config"): "inspect/jscan.c and inspect/taxonomy.h use config/jsonpos.h and "
                           "config/cfgerr.h: JSON positions and error lists belong in common/",
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([A-Za-z0-9_]+)/[^"]+"', re.M)


def dependencies(files, dirs):
    """{folder: {folder: [file, ...]}} from FILES, an iterable of
    (folder, name, text); only includes of folders in DIRS count."""
    deps = {d: {} for d in dirs}
    for folder, name, text in files:
        for m in INCLUDE.finditer(text):
            to = m.group(1)
            if to != folder and to in dirs:
                deps[folder].setdefault(to, []).append(name)
    return deps


def cycles(deps, ignore=()):
    """The strongly connected components of more than one folder (Tarjan),
    each as a sorted list, edges in IGNORE left out."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(deps.get(v, {})):
            if (v, w) in ignore or w not in deps:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(deps):
        if v not in index:
            visit(v)
    return sorted(out)


def layers(deps, ignore=()):
    """Folders bottom-up (each after everything it depends on), or None if
    there is a cycle."""
    done, order = set(), []
    remaining = set(deps)
    while remaining:
        ready = sorted(d for d in remaining
                       if all(t in done or (d, t) in ignore for t in deps[d]))
        if not ready:
            return None
        order.append(ready)
        done.update(ready)
        remaining.difference_update(ready)
    return order


def check(deps, known):
    """Findings (strings) for DEPS with the KNOWN back edges left out."""
    found = []
    for comp in cycles(deps, set(known)):
        edges = ["%s -> %s (%s)" % (a, b, ", ".join(sorted(set(deps[a][b]))[:3]))
                 for a in comp for b in sorted(deps[a]) if b in comp and (a, b) not in known]
        found.append("folder cycle %s: %s" % (" <-> ".join(comp), "; ".join(edges)))
    for (a, b) in sorted(known):
        if b not in deps.get(a, {}):
            found.append("known back edge %s -> %s is gone: delete it from KNOWN_BACK_EDGES"
                         % (a, b))
    return found


def read_tree(root, dirs):
    for d in dirs:
        top = os.path.join(root, d)
        for base, _sub, names in os.walk(top):
            for n in sorted(names):
                if n.endswith((".c", ".h")):
                    path = os.path.join(base, n)
                    with open(path, encoding="utf-8", errors="replace") as f:
                        yield d, os.path.relpath(path, root), f.read()


def self_test():
    def tree(spec):
        return [(d, d + "/x.c", "".join('#include "%s/y.h"\n' % t for t in ts))
                for d, ts in spec.items()]

    dirs = ("a", "b", "c")
    ok = dependencies(tree({"a": ["b", "c"], "b": ["c"], "c": []}), dirs)
    bad = dependencies(tree({"a": ["b"], "b": ["c"], "c": ["a"]}), dirs)
    # system includes, commented-out lines, unknown folders and the folder's
    # own headers do not count
    other = dependencies([("a", "a/x.c", '#include <b/y.h>\n// #include "c/y.h" is a comment\n'
                                         '#include "zz/y.h"\n#include "a/y.h"\n')], dirs)
    problems = []
    if check(ok, {}) != [] or layers(ok) != [["c"], ["b"], ["a"]]:
        problems.append("an acyclic tree was refused: %s" % check(ok, {}))
    if len(check(bad, {})) != 1 or "a <-> b <-> c" not in check(bad, {})[0]:
        problems.append("a three-folder cycle was not found: %s" % check(bad, {}))
    if check(bad, {("c", "a"): "planted"}) != []:
        problems.append("a known back edge was not left out")
    if not any("is gone" in f for f in check(ok, {("c", "a"): "planted"})):
        problems.append("a stale known back edge was not reported")
    if other["a"] != {}:
        problems.append("include parsing: %s" % other["a"])
    for p in problems:
        print("check-layers self-test: " + p)
    return 1 if problems else 0


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    deps = dependencies(read_tree(root, PRODUCT_DIRS), PRODUCT_DIRS)
    if argv[1:] == ["--graph"]:
        for d in PRODUCT_DIRS:
            print("%-8s -> %s" % (d, " ".join(sorted(deps[d])) or "-"))
        order = layers(deps, set(KNOWN_BACK_EDGES))
        print("layers (bottom up, known back edges left out): %s"
              % (" | ".join(" ".join(l) for l in order) if order else "none: there is a cycle"))
    found = check(deps, KNOWN_BACK_EDGES)
    for f in found:
        print("layers: " + f)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
