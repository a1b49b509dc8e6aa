#!/usr/bin/env python3
"""Basic indexing (integers and slices with any step, on tensors of rank 1 to 4) against
Python's own slicing of nested lists, eagerly and inside a graph fn: 300 random cases
from a fixed seed, one program per mode. rt::get_index copies rows with memcpy when the
last axis is taken with step 1; this checks every layout that path and the element walk
take.

Usage: tests/index_agreement.py --tdl build/tdl"""
import argparse
import os
import random
import subprocess
import sys
import tempfile


def nested(values, shape):
    if len(shape) == 1:
        return values
    step = len(values) // shape[0]
    return [nested(values[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def index(x, items):
    """x[items] for nested lists, items ints or slices, as NumPy's basic indexing."""
    if not items:
        return x
    head, rest = items[0], items[1:]
    if isinstance(head, int):
        return index(x[head], rest)
    return [index(e, rest) for e in x[head]]


def flat_and_shape(v):
    if not isinstance(v, list):
        return [v], []
    if not v:
        return [], [0]
    parts = [flat_and_shape(e) for e in v]
    return [a for p in parts for a in p[0]], [len(v)] + parts[0][1]


def cases(seed, count):
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        shape = [rng.randint(1, 5) for _ in range(rng.randint(1, 4))]
        items, text = [], []
        for n in shape[:rng.randint(1, len(shape))]:
            k = rng.random()
            if k < 0.3:
                i = rng.randrange(-n, n)
                items.append(i)
                text.append(str(i))
            elif k < 0.45:
                items.append(slice(None))
                text.append(":")
            else:
                a, b = rng.randrange(-n - 1, n + 2), rng.randrange(-n - 1, n + 2)
                s = rng.choice([1, 1, 1, 2, 3, -1, -2])
                items.append(slice(a, b, s))
                text.append(f"{a}:{b}:{s}")
        size = 1
        for n in shape:
            size *= n
        flat, _ = flat_and_shape(index(nested(list(range(size)), shape), items))
        rshape = [len(range(*it.indices(n))) for it, n in zip(items, shape) if isinstance(it, slice)]
        rshape += shape[len(items):]
        out.append((shape, size, ", ".join(text), flat, rshape))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tdl", required=True)
    a = ap.parse_args()
    cs = cases(17, 300)
    failures = 0
    with tempfile.TemporaryDirectory() as d:
        for mode in ("eager", "graph"):
            lines = []
            for k, (shape, size, text, _, _) in enumerate(cs):
                x = f"reshape(arange({size}), {shape})"
                if mode == "eager":
                    lines.append(f"let y{k} = {x}[{text}]")
                else:
                    lines.append(f"graph fn g{k}(x) {{ return x[{text}] }}\nlet y{k} = g{k}({x})")
                lines.append(f"print(reshape(y{k}, [-1]), y{k}.shape)")
            path = os.path.join(d, mode + ".tdl")
            with open(path, "w") as f:
                f.write("\n".join(lines) + "\n")
            r = subprocess.run([a.tdl, "run", path], capture_output=True, text=True, timeout=600)
            got = r.stdout.splitlines()
            if r.returncode != 0 or len(got) != len(cs):
                print(f"FAIL {mode}: exit {r.returncode}, {len(got)} lines of {len(cs)}: {r.stderr[:400]}")
                failures += 1
                continue
            bad = 0
            for (shape, _, text, flat, rshape), line in zip(cs, got):
                want = f"{flat} {rshape}"
                if line.replace(" ", "") != want.replace(" ", ""):
                    bad += 1
                    if bad <= 3:
                        print(f"FAIL {mode}: arange reshaped {shape}, [{text}]: got {line}, want {want}")
            print(f"{'ok  ' if not bad else 'FAIL'} {mode}: {len(cs) - bad} of {len(cs)} index expressions agree")
            failures += bad > 0
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
