#!/usr/bin/env python3
"""Differential suite (issue 5): every .tdl program of tests/ and examples/ (and the given
extra folders) runs eagerly (`tdl run --eager`) and compiled (`tdl run`); the two runs must
exit with the same status, print the same stdout (floats within SPEC §11: relative 1e-5,
integers and other text exactly) and report the same first diagnostic line and call chain.

Usage: differential.py --tdl PATH/TO/tdl [DIRS...]   (default DIRS: tests examples)
Skips fuzz corpora and files whose `# modes:` line excludes graph.
"""
import argparse
import os
import re
import subprocess
import sys

NUM = re.compile(r"-?(?:\d+\.\d*(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+|\.\d+(?:[eE][-+]?\d+)?|nan|inf)")
RTOL = 1e-5
# diagnostics/ holds must-fail `tdl check` inputs, some failing only when compiled (recursion).
# dist: scripts for several ranks, run under mpirun by tests/dist/test_dist.py.
SKIP_DIRS = {"fuzz", "corpus", "corpus-run-frontend", "diagnostics", "dist"}


def same_text(a, b):
    """Equal up to float tolerance (tokens that look like floats)."""
    if a == b:
        return True
    na, nb = NUM.split(a), NUM.split(b)
    fa, fb = NUM.findall(a), NUM.findall(b)
    if na != nb or len(fa) != len(fb):
        return False
    for x, y in zip(fa, fb):
        if x == y:
            continue
        try:
            fx, fy = float(x), float(y)
        except ValueError:
            return False
        if abs(fx - fy) > RTOL * max(abs(fx), abs(fy), 1e-30):
            return False
    return True


def wants_graph(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            s = line.strip()
            if s.startswith("# modes:"):
                return "graph" in s.split(":", 1)[1].split() and "eager" in s.split(":", 1)[1].split()
    return True


def program_args(path):
    """The arguments a program's `# args:` line names (e.g. `quiet`: no timings), else none."""
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            s = line.strip()
            if s.startswith("# args:"):
                return s.split(":", 1)[1].split()
    return []


def run(tdl, path, eager):
    cmd = [tdl, "run"] + (["--eager"] if eager else []) + [path] + program_args(path)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=os.path.dirname(path) or ".",
                           stdin=subprocess.DEVNULL, errors="replace")
    except subprocess.TimeoutExpired:
        return None
    lines = p.stderr.splitlines()
    at = next((i for i, l in enumerate(lines) if ": error: " in l), None)
    first = lines[at] if at is not None else ""
    # The first error's call chain (`  in fn NAME at FILE:L:C` lines after its source lines).
    chain = [l for l in lines[at + 1:] if l.startswith("  in fn ")] if at is not None else []
    return p.returncode, p.stdout, first + "".join("\n" + l for l in chain)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tdl", required=True)
    ap.add_argument("dirs", nargs="*")
    args = ap.parse_args()
    args.tdl = os.path.abspath(args.tdl)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    dirs = args.dirs or [os.path.join(root, "tests"), os.path.join(root, "examples")]
    files = []
    for d in dirs:
        for base, subdirs, names in os.walk(d):
            subdirs[:] = sorted(s for s in subdirs if s not in SKIP_DIRS)
            files += [os.path.join(base, n) for n in sorted(names) if n.endswith(".tdl")]
    failed = 0
    for f in files:
        if not wants_graph(f):
            continue
        e, g = run(args.tdl, f, True), run(args.tdl, f, False)
        problem = None
        if e is None or g is None:
            problem = "timeout"
        elif e[0] != g[0]:
            problem = f"exit status {e[0]} eager, {g[0]} compiled ({g[2] or e[2]})"
        elif not all(same_text(x, y) for x, y in zip(e[1].splitlines(), g[1].splitlines())) or \
                len(e[1].splitlines()) != len(g[1].splitlines()):
            problem = "stdout differs"
        elif e[2] != g[2]:
            problem = f"diagnostic differs: {e[2]!r} vs {g[2]!r}"
        print(("FAIL " if problem else "ok   ") + os.path.relpath(f, root) + (f": {problem}" if problem else ""))
        failed += bool(problem)
    print(f"{len(files)} files, {failed} differ")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
