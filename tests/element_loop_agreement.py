#!/usr/bin/env python3
"""Random element loops (issue 17), eagerly and in a graph fn: the same output, or the same
error. Each program is a graph fn over a 1-D tensor with a `for i in range(y.shape[0])` or
the seed's `while i < y.shape[0]` / `<=` loop (from 0 or 1) whose body is an if/else on an
element, updating elements by the counter, from the end or at i // 2, or a scalar — the
shapes the ifconvert and loops passes and native loops rewrite, and the ones they must
leave alone. Deterministic per seed.

  tests/element_loop_agreement.py --tdl build/tdl [--seed 1] [--count 60]"""
import argparse
import concurrent.futures
import os
import random
import subprocess
import sys
import tempfile


def program(r):
    at = r.choice(["i", "-1 - i", "i // 2", "i"])
    cmpv = r.choice(["0.5", "-0.2", "y[i]"])
    val_t = r.choice(["y[i] * 2.0", f"y[{at}] + 1.0", "1.5", "y[i] - x[i]", "x[i] * x[i]", "c * 1.0"])
    val_e = r.choice(["y[i] + 1.0", "0.0", f"y[{at}] * -1.0", "x[i]", "c + 1.0"])
    then_ = r.choice([f"y[{at}] = {val_t}", f"y[{at}] += {val_t}", f"c += {val_t}",
                      f"y[{at}] = {val_t}\n            c += 1.0"])
    else_ = r.choice([f"y[{at}] = {val_e}", f"y[{at}] -= 1.0", "c -= 1.0", "", f"y[{at}] = {val_e}"])
    cond = f"x[i] > {cmpv}" if r.random() < 0.5 else f"y[i] > {cmpv}"
    body = f"        if {cond} {{\n            {then_}\n        }}"
    if else_:
        body += f" else {{\n            {else_}\n        }}"
    if r.random() < 0.5:
        loop = f"    for i in range(y.shape[0]) {{\n{body}\n    }}"
    else:
        cmp = r.choice(["<", "<", "<="])
        loop = (f"    var i = {r.choice(['0', '0', '1'])}\n    while i {cmp} y.shape[0] {{\n{body}\n"
                "        i += 1\n    }")
    vals = ", ".join(f"{r.uniform(-1, 1):.3f}" for _ in range(r.choice([0, 1, 5, 8])))
    return (f"graph fn g(x: f32[?]) {{\n    var y = x * 1.0\n    var c = 0.0\n{loop}\n    return (y, c)\n}}\n"
            f"let x = [{vals}]\nprint(g(x))\nprint(x)\n")


def check(tdl, d, k, src):
    path = os.path.join(d, f"p{k}.tdl")
    with open(path, "w") as f:
        f.write(src)
    env = dict(os.environ, TDL_CACHE_DIR="off")
    e = subprocess.run([tdl, "run", "--eager", path], capture_output=True, text=True, env=env, timeout=60)
    g = subprocess.run([tdl, "run", path], capture_output=True, text=True, env=env, timeout=60)
    if (e.returncode, e.stdout, e.stderr) == (g.returncode, g.stdout, g.stderr):
        return None
    return f"--- program {k}\n{src}--- eager: exit {e.returncode}\n{e.stdout}{e.stderr}--- graph: exit {g.returncode}\n{g.stdout}{g.stderr}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tdl", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=60)
    a = ap.parse_args()
    r = random.Random(a.seed)
    progs = [program(r) for _ in range(a.count)]
    with tempfile.TemporaryDirectory() as d, concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as ex:
        bad = [b for b in ex.map(lambda kp: check(os.path.abspath(a.tdl), d, *kp), enumerate(progs)) if b]
    for b in bad:
        print(b)
    print(f"{a.count - len(bad)} of {a.count} element loops agree")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
