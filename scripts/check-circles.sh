#!/usr/bin/env bash
# check-circles.sh - no two files of lib/ call each other, directly or
# through others: reads which functions each object file of a build
# defines and uses (nm), draws an edge from a file to every file whose
# functions it calls, and fails on any strongly connected group of files.
#
#   scripts/check-circles.sh BUILD_DIR
set -euo pipefail
build=${1:?usage: check-circles.sh BUILD_DIR}
exec python3 - "$build" <<'PY'
import collections, glob, subprocess, sys
build = sys.argv[1]
objs = [o for o in glob.glob(build + "/CMakeFiles/donut_*.dir/lib/**/*.o", recursive=True)
        if "/donut_probe_" not in o]
defs, uses = {}, collections.defaultdict(set)
for o in objs:
    name = o.split("/lib/", 1)[1][:-2]
    for line in subprocess.run(["nm", o], capture_output=True, text=True, check=True).stdout.splitlines():
        p = line.split()
        if len(p) == 3 and p[1] in "TDBR":
            defs.setdefault(p[2], name)
        elif len(p) == 2 and p[0] == "U":
            uses[name].add(p[1])
edges = collections.defaultdict(lambda: collections.defaultdict(set))
for f, syms in uses.items():
    for s in syms:
        g = defs.get(s)
        if g and g != f:
            edges[f][g].add(s)
index, low, stack, on, groups, n = {}, {}, [], set(), [], [0]
sys.setrecursionlimit(10000)
def visit(v):
    index[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
    for w in edges.get(v, {}):
        if w not in index:
            visit(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        g = []
        while True:
            w = stack.pop(); on.discard(w); g.append(w)
            if w == v: break
        if len(g) > 1: groups.append(g)
for v in list(edges):
    if v not in index: visit(v)
for g in groups:
    print("check-circles: these files call each other in a circle:", file=sys.stderr)
    for a in g:
        for b in g:
            if b in edges[a]:
                print("  lib/%s -> lib/%s (%s)" % (a, b, ", ".join(sorted(edges[a][b]))), file=sys.stderr)
if not objs:
    print("check-circles: no object files under " + build, file=sys.stderr); sys.exit(1)
if groups: sys.exit(1)
print("check-circles: %d files, %d calling edges between them, no circles" % (len(objs), sum(len(e) for e in edges.values())))
PY
