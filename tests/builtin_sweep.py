#!/usr/bin/env python3
"""Odd values through every argument position of every builtin, eagerly and inside a graph
fn: each call ends in its result or a clean script error (exit 0 or 1, `file:line:col:
error:`), never a crash, an internal error or a hang. The builtins come from
builtin table (frontend/builtins.def and runtime/ops.def, read by scripts/tdl_tables.py), so a
new builtin is swept without touching this file.

Each program holds one call (the first error ends a run); they run in parallel. The whole
sweep (about 20 000 programs, eager and graph) takes about 15 minutes on 2 cores; ctest runs
`--per-builtin 24` (a fixed sample of graph-fn cases for every builtin, about 1 500
programs) and the full sweep is `tests/builtin_sweep.py --tdl build/tdl`."""
import argparse
import concurrent.futures
import os
import random
import re
import subprocess
import sys
import tempfile

ODD = ["\"s\"", "[]", "()", "{a: 1.0}", "none", "f32", "fn(v) => v", "zeros([0])", "zeros([2, 0])",
       "[1.0, 2.0]", "(1, 2)", "[[1, 2], [3]]", "-1", "1.5", "true", "x", "zeros([0, 3], dtype=i64)",
       "9223372036854775807", "-0.5", "float(\"nan\")", "[\"a\"]", "[none]"]
# Builtins whose effects are outside the process or that never return normally.
SKIP = {"exit", "args", "time", "seed", "progress", "plot", "save_npy", "save", "load_npy", "load_csv", "load",
        "print", "assert", "tape"}
CRASH = ("internal error", "Segmentation fault", "terminate called", "Aborted", "AddressSanitizer",
         "runtime error:", "core dumped")


def builtins(root):
    sys.path.insert(0, os.path.join(root, "scripts"))
    import tdl_tables
    return [n for n in tdl_tables.builtin_names(root) if n not in SKIP]


def programs(names):
    """(label, source) pairs: one call per program, eager and in a graph fn."""
    out = []
    for name in names:
        for arity in (1, 2, 3):
            for pos in range(arity):
                for odd in ODD:
                    args = ["x"] * arity
                    args[pos] = odd
                    call = f"{name}({', '.join(args)})"
                    out.append((f"eager {call}", f"let x = [[1.0, 2.0], [3.0, 4.0]]\nprint({call})\n"))
                    out.append((f"graph {call}",
                                f"graph fn g(x) {{\n  return {call}\n}}\nprint(g([[1.0, 2.0], [3.0, 4.0]]))\n"))
    return out


def check(tdl, d, i, label, src):
    path = os.path.join(d, f"case{i}.tdl")
    with open(path, "w") as f:
        f.write(src)
    try:
        r = subprocess.run([tdl, "run", path], capture_output=True, text=True, errors="replace", timeout=30,
                           env=dict(os.environ, TDL_CACHE_DIR="off"))
    except subprocess.TimeoutExpired:
        return f"{label}: timeout"
    bad = r.returncode not in (0, 1) or any(c in r.stderr for c in CRASH)
    if r.returncode == 1 and not re.search(r"case\d+\.tdl:\d+:\d+: error: ", r.stderr):
        bad = True
    return f"{label}: exit {r.returncode}: {r.stderr.strip()[:240]}" if bad else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tdl", required=True)
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ap.add_argument("--only", default="", help="comma-separated builtin names")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--per-builtin", type=int, default=0,
                    help="a fixed sample of this many graph-fn cases per builtin (0: every case, both modes)")
    a = ap.parse_args()
    tdl = os.path.abspath(a.tdl)
    names = builtins(a.root)
    if a.only:
        names = [n for n in names if n in a.only.split(",")]
    cases = programs(names)
    if a.per_builtin:
        rng = random.Random(2026)
        sample = []
        for name in names:
            mine = [c for c in cases if c[0].startswith(f"graph {name}(")]
            sample += rng.sample(mine, min(a.per_builtin, len(mine)))
        cases = sample
    d = tempfile.mkdtemp(prefix="tdl-sweep-")
    failures = []
    with concurrent.futures.ThreadPoolExecutor(a.jobs) as ex:
        for res in ex.map(lambda p: check(tdl, d, p[0], *p[1]), enumerate(cases)):
            if res:
                failures.append(res)
                print("FAIL", res)
    subprocess.run(["rm", "-rf", d])
    print(f"{len(cases) - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
