#!/usr/bin/env python3
"""Bad input and faults through `tdl` as a user meets them (issue: "Nothing lost, nothing
crashes"): every case ends in a clear error (`file:line:col: error:` and exit 1) or the right
answer, never a crash, a hang, a wrong answer or lost data.

The time limits here only catch hangs and quadratic blow-ups (the cases take well under a
second each; the limits are ten times that and more): they are not benchmarks."""
import argparse
import os
import subprocess
import sys
import tempfile
import time

failures = []
checks = [0]


def expect(name, cond, r=None):
    checks[0] += 1
    if cond:
        print(f"ok   {name}")
    else:
        failures.append(name)
        extra = ""
        if r is not None:
            extra = f" (exit {r.returncode}; stdout {r.stdout[:300]!r}; stderr {r.stderr[:400]!r})"
        print(f"FAIL {name}{extra}")


class Result:
    def __init__(self, returncode, stdout, stderr, seconds):
        self.returncode, self.stdout, self.stderr, self.seconds = returncode, stdout, stderr, seconds


def run(tdl, *args, timeout=60, env=None, stdin=None, cwd=None):
    """Runs tdl (killed at `timeout`: a hang)."""
    t0 = time.time()
    p = subprocess.Popen([tdl, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=stdin or subprocess.DEVNULL,
                         env=env, cwd=cwd)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return Result(-999, out.decode("utf-8", "replace"), "TIMEOUT " + err.decode("utf-8", "replace"), timeout)
    return Result(p.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), time.time() - t0)


def write(d, name, text):
    path = os.path.join(d, name)
    with open(path, "w" if isinstance(text, str) else "wb") as f:
        f.write(text)
    return path


def parse_limits(tdl, d):
    """Runs of separators parse in linear time; sources are bounded in memory."""
    mb = 1 << 20
    cases = {
        "1 MB of blank lines in a block": "fn f() {" + "\n" * mb + "}\nprint(1)\n",
        "1 MB of `;` in a block": "fn f() {" + ";" * mb + "}\nprint(1)\n",
        "1 MB of comment lines in a block": "fn f() {\n" + "# a comment\n" * (mb // 12) + "}\nprint(1)\n",
        "1 MB of leading blank lines": "\n" * mb + "print(1)\n",
        "alternating `;` and newlines": "fn f() {" + ";\n" * (mb // 2) + "}\nprint(1)\n",
        "blank lines before else": "if true {\n}" + "\n" * mb + "else { }\nprint(1)\n",
    }
    for name, text in cases.items():
        path = write(d, "sep.tdl", text)
        r = run(tdl, "run", path, timeout=20)
        expect(f"parse time: {name} runs (linear, not quadratic)", r.returncode == 0 and r.stdout == "1\n", r)
    # Separators still separate: two statements on one line are an error, `;` is a separator.
    path = write(d, "two.tdl", "let a = 1 let b = 2\n")
    r = run(tdl, "check", path)
    expect("two statements on one line without a separator are a syntax error",
           r.returncode == 1 and "two.tdl:1:11: error: syntax error" in r.stderr, r)
    path = write(d, "semi.tdl", ";;\nlet a = 1;;; let b = 2 ;\n\n;print(a + b);\n")
    r = run(tdl, "run", path)
    expect("runs of `;` and newlines between statements", r.returncode == 0 and r.stdout == "3\n", r)
    path = write(d, "rec.tdl", "let r = {\n\n  a: 1,\n\n  b: 2\n\n}\nprint(r.a + r.b)\n")
    r = run(tdl, "run", path)
    expect("blank lines inside a record literal", r.returncode == 0 and r.stdout == "3\n", r)
    path = write(d, "recsemi.tdl", "let r = {\n;  a: 1 }\n")
    r = run(tdl, "check", path)
    expect("`;` inside a record literal is still a syntax error", r.returncode == 1 and "syntax error" in r.stderr, r)
    # A huge source: refused with a clear error (or checked) in bounded memory.
    line = "let v = [1.0, 2.0, 3.0] * 4.5 + foo(a, b[2], c)\n"
    path = write(d, "huge.tdl", line * (60 * mb // len(line)))
    r = run(tdl, "check", path, timeout=120)
    expect("a 60 MB source is refused with a clear error", r.returncode == 1 and "huge.tdl:1:1: error: the file is too large"
           in r.stderr, r)
    os.unlink(path)
    path = write(d, "wide.tdl", "let x = [" + "1," * 600000 + "1]\n")
    r = run(tdl, "check", path, timeout=120)
    expect("a source of more tokens than the bound is refused", r.returncode == 1 and "too large to parse" in r.stderr, r)
    # Under the bound, a long program checks.
    path = write(d, "long.tdl", "".join(f"let v{i} = [1.0, 2.0] * {i}.5\n" for i in range(40000)) + "print(v7)\n")
    r = run(tdl, "run", path, timeout=60)
    expect("a 40 000-statement program runs", r.returncode == 0 and r.stdout == "[7.5, 15.0]\n", r)
    # Many statements in one graph fn compile (no quadratic pass).
    body = "  y = y + 1.0\n" * 3000
    path = write(d, "chain.tdl", "graph fn g(x) {\n  var y = x\n" + body + "  return y\n}\nprint(g([1.0]))\n")
    r = run(tdl, "run", path, timeout=60, env=dict(os.environ, TDL_CACHE_DIR="off"))
    expect("a graph fn of 3 000 chained statements compiles", r.returncode == 0 and r.stdout == "[3001.0]\n", r)


def numbers(tdl, d):
    """Integer limits: literals, exit codes, ranges near i64's ends (eager, graph, build)."""
    path = write(d, "lit.tdl", "print(-9223372036854775808)\nprint(9223372036854775807)\nprint(2.0 ** -9223372036854775808 == 0.0)\n")
    r = run(tdl, "run", path)
    expect("i64's extreme literals", r.returncode == 0 and r.stdout == "-9223372036854775808\n9223372036854775807\ntrue\n", r)
    for text in ("print(9223372036854775808)", "let x = 1 - 9223372036854775808", "print(-(9223372036854775808))",
                 "print(99999999999999999999999)"):
        path = write(d, "lit.tdl", text + "\n")
        r = run(tdl, "check", path)
        expect(f"out-of-range literal is an error: {text}",
               r.returncode == 1 and "error: integer literal is too large for i64" in r.stderr, r)
    for code, ok in ((0, True), (7, True), (255, True), (256, False), (-1, False)):
        path = write(d, "exit.tdl", f"exit({code})\n")
        r = run(tdl, "run", path)
        if ok:
            expect(f"exit({code}) exits {code}", r.returncode == code and r.stderr == "", r)
        else:
            expect(f"exit({code}) is an error (not a wrapped status)",
                   r.returncode == 1 and "exit.tdl:1:1: error: exit(): the code must be in 0..255" in r.stderr, r)
    prog = """let big = 9223372036854775807
let small = -9223372036854775807 - 1
var c = 0
for i in range(small, big, 4611686018427387904) { c += 1 }
print(c, len(range(small, big, 4611686018427387904)), len(range(small, big)))
graph fn up(n: i64) {
  var s = 0
  for i in range(n - 5, n, 4) { s += i - n }
  return s
}
graph fn down(n: i64) {
  var s = 0
  for i in range(n + 5, n, -4) { s += i - n }
  return s
}
print(up(big), down(small), up(10), down(10))
"""
    path = write(d, "range.tdl", prog)
    want = "4 4 9223372036854775807\n-6 6 -6 6\n"
    for mode in ("--eager", None):
        r = run(tdl, "run", *([mode] if mode else []), path, timeout=20)
        expect(f"ranges near i64's limits ({'eager' if mode else 'graph'})", r.returncode == 0 and r.stdout == want, r)
    exe = os.path.join(d, "range-exe")
    r = run(tdl, "build", path, "-o", exe, timeout=120)
    if r.returncode == 0:
        r = Result(*subprocess_run([exe]))
    expect("ranges near i64's limits (built executable)", r.returncode == 0 and r.stdout == want, r)


def subprocess_run(cmd, timeout=20):
    t0 = time.time()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=timeout)
        return p.returncode, p.stdout, p.stderr, time.time() - t0
    except subprocess.TimeoutExpired:
        return -999, "", "TIMEOUT", timeout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tdl", required=True)
    tdl = os.path.abspath(ap.parse_args().tdl)
    d = tempfile.mkdtemp(prefix="tdl-bad-input-")
    try:
        parse_limits(tdl, d)
        numbers(tdl, d)
    finally:
        subprocess.run(["rm", "-rf", d])
    print(f"{checks[0] - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
