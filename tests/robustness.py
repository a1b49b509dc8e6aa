#!/usr/bin/env python3
"""`tdl check` on truncated, mutated and random files never crashes or hangs:
every run ends with exit status 0 or 1 (never 3, a signal, or a timeout).
Deterministic (fixed seed) so a failure reproduces; the inputs are
derived from the .tdl files under the given folders."""
import argparse
import os
import random
import re
import subprocess
import sys
import tempfile

CRASH = ("Segmentation fault", "terminate called", "Aborted", "AddressSanitizer")
# An internal error starts a line (its report) or a diagnostic's message; the source line a
# diagnostic quotes may say "internal error" in a comment (tests/lang has such comments).
INTERNAL = re.compile(r"(^|\n)internal error|error: internal")
TOKENS = ["(", ")", "[", "]", "{", "}", "fn", "graph", "let", "var", "if", "else", "while", "for",
          "in", "return", "=>", "->", "**", "@", ":", ",", ".", "\n", ";", "\"", "f\"{", "}", "#",
          "1e", "1_", ".5", "x", "-", "not", "with", "tape()", "as", "import", "\\", "\x00", "\xff"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tdl", required=True)
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("dirs", nargs="+")
    a = ap.parse_args()
    tdl = os.path.abspath(a.tdl)
    rng = random.Random(1234)
    sources = []
    for d in a.dirs:
        for root, _, names in os.walk(d):
            sources += [os.path.join(root, n) for n in names if n.endswith(".tdl")]
    sources.sort()
    texts = [open(p, "rb").read() for p in sources] or [b"let x = 1\nprint(x)\n"]
    work = tempfile.mkdtemp()
    path = os.path.join(work, "case.tdl")
    failed = 0
    # Every seed unmodified first (fuzzer findings live among them as regressions).
    for src in sources:
        try:
            r = subprocess.run([tdl, "check", src], capture_output=True, timeout=30)
            err = r.stderr.decode("utf-8", "replace")
            if r.returncode not in (0, 1) or any(c in err for c in CRASH) or INTERNAL.search(err):
                failed += 1
                print(f"FAIL seed {src}: exit {r.returncode}: {err[:300]}")
        except subprocess.TimeoutExpired:
            failed += 1
            print(f"FAIL seed {src}: timeout")
    for i in range(a.count):
        base = rng.choice(texts)
        kind = i % 4
        if kind == 0:
            data = base[: rng.randrange(len(base) + 1)]
        elif kind == 1:
            b = bytearray(base)
            for _ in range(rng.randrange(1, 8)):
                if b:
                    b[rng.randrange(len(b))] = rng.randrange(256)
            data = bytes(b)
        elif kind == 2:
            parts = [rng.choice(TOKENS) for _ in range(rng.randrange(1, 200))]
            data = " ".join(parts).encode("utf-8", "surrogateescape")
        else:
            b = bytearray(base)
            pos = rng.randrange(len(b) + 1)
            b[pos:pos] = rng.choice(TOKENS).encode() * rng.randrange(1, 3000)
            data = bytes(b)
        with open(path, "wb") as f:
            f.write(data)
        try:
            r = subprocess.run([tdl, "check", path], capture_output=True, timeout=30)
            err = r.stderr.decode("utf-8", "replace")
            bad = r.returncode not in (0, 1) or any(c in err for c in CRASH) or INTERNAL.search(err) is not None
        except subprocess.TimeoutExpired:
            bad, err = True, "timeout"
        if bad:
            failed += 1
            keep = os.path.join(work, f"failure-{i}.tdl")
            os.replace(path, keep)
            print(f"FAIL case {i} (kind {kind}): exit {getattr(r, 'returncode', '?')}: {err[:300]} -> {keep}")
    print(f"{a.count + len(sources) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
