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

from checklib import expect, summary


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
    # A UTF-8 byte order mark before the first line is dropped (as Python does).
    r = run(tdl, "run", write(d, "bom.tdl", b"\xef\xbb\xbfprint(1)\nprint(2 +)\n"))
    expect("a UTF-8 byte order mark: dropped; positions count from the first shown character",
           r.returncode == 1 and r.stdout == "" and "bom.tdl:2:10: error: syntax error" in r.stderr, r)
    r = run(tdl, "run", write(d, "bom_ok.tdl", b"\xef\xbb\xbfprint(1)\n"))
    expect("a UTF-8 byte order mark: the program runs", r.returncode == 0 and r.stdout == "1\n", r)
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
print(c, len(range(small, big, 4611686018427387904)), range(small, big)[-1])
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
    want = "4 4 9223372036854775806\n-6 6 -6 6\n"
    for mode in ("--eager", None):
        r = run(tdl, "run", *([mode] if mode else []), path, timeout=20)
        expect(f"ranges near i64's limits ({'eager' if mode else 'graph'})", r.returncode == 0 and r.stdout == want, r)
    exe = os.path.join(d, "range-exe")
    r = run(tdl, "build", path, "-o", exe, timeout=120)
    if r.returncode == 0:
        r = run(exe, timeout=20)
    expect("ranges near i64's limits (built executable)", r.returncode == 0 and r.stdout == want, r)


def npy_whole(path, n):
    """The value of every element if `path` is a whole .npy of n equal f32 elements, else None."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if not data.startswith(b"\x93NUMPY"):
        return None
    hlen = int.from_bytes(data[8:10], "little") if data[6] == 1 else int.from_bytes(data[8:12], "little")
    body = data[(10 if data[6] == 1 else 12) + hlen:]
    if len(body) != 4 * n or body != body[:4] * n:
        return None
    return body[:4]


def atomic_writes(tdl, d):
    """`save_npy`, `save` and `plot` replace their file atomically: killed at any point, or
    out of disk space, the old file is left whole; `tdl build` likewise."""
    import random
    n = 1 << 22  # 16 MiB a file: a write takes long enough to be killed halfway
    target = os.path.join(d, "w.npy")
    first = write(d, "first.tdl", f'save_npy("{target}", full([{n}], 0.0))\n')
    r = run(tdl, "run", first)
    expect("save_npy writes a file", r.returncode == 0 and npy_whole(target, n) is not None, r)
    loop = write(d, "loop.tdl", f'for i in range(1, 100000) {{ save_npy("{target}", full([{n}], float(i))) }}\n')
    rng = random.Random(7)
    intact = 0
    values = set()
    for k in range(8):
        p = subprocess.Popen([tdl, "run", loop], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 1.0))
        p.kill()
        p.wait()
        v = npy_whole(target, n)
        intact += v is not None
        values.add(v)
    expect("kill -9 during save_npy, 8 times at random points: the file is always a whole old or new one",
           intact == 8, None)
    expect("kill -9 during save_npy: later saves did replace the file", len(values) > 1, None)
    for leftover in os.listdir(d):
        if leftover.startswith(".w.npy.tdl-"):
            os.unlink(os.path.join(d, leftover))
    # A full disk: the write fails with a clear error and the old file stays.
    mnt = os.path.join(d, "small")
    os.mkdir(mnt)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt], capture_output=True).returncode != 0:
        print("skip full-disk case: cannot mount a small tmpfs here")
        return
    try:
        small = os.path.join(mnt, "s.npy")
        prog = write(d, "full.tdl", f'save_npy("{small}", full([1000], 1.0))\nsave_npy("{small}", full([1000000], 2.0))\n')
        r = run(tdl, "run", prog)
        expect("a full disk: save_npy is a clear error naming the file",
               r.returncode == 1 and "full.tdl:2:1: error: cannot write" in r.stderr and "No space left" in r.stderr, r)
        expect("a full disk: the old file is left whole", npy_whole(small, 1000) is not None, None)
        expect("a full disk: no temporary is left behind", os.listdir(mnt) == ["s.npy"], None)
        prog = write(d, "fullst.tdl", f'save("{os.path.join(mnt, "m.safetensors")}", {{w: full([1000000], 2.0)}})\n')
        r = run(tdl, "run", prog)
        expect("a full disk: save is a clear error", r.returncode == 1 and "No space left" in r.stderr, r)
        prog = write(d, "fullplot.tdl", f'plot("{os.path.join(mnt, "p.svg")}", rand([400000]))\n')
        r = run(tdl, "run", prog, timeout=120)
        expect("a full disk: plot is a clear error", r.returncode == 1 and "No space left" in r.stderr, r)
        expect("a full disk: nothing but the first file is left", os.listdir(mnt) == ["s.npy"], None)
    finally:
        subprocess.run(["umount", mnt])


def build_outputs(tdl, d):
    """`tdl build` never replaces its own inputs, and reports bad outputs as tdl errors."""
    sub = os.path.join(d, "build")
    os.mkdir(sub)
    util = write(sub, "util.tdl", "fn twice(x) { return x * 2.0 }\n")
    app = write(sub, "app.tdl", 'import "util.tdl" as u\ngraph fn f(x: f32[3]) -> f32[3] { return u.twice(x) }\n'
                                "print(f([1.0, 2.0, 3.0]))\n")
    src = open(app).read()
    for out, what in ((app, "the script"), (util, "an imported module")):
        r = run(tdl, "build", app, "-o", out, cwd=sub, timeout=120)
        expect(f"tdl build -o {what}: refused, the file intact",
               r.returncode == 1 and "error: the output" in r.stderr and "is the source file" in r.stderr
               and open(app).read() == src and "twice" in open(util).read(), r)
    r = run(tdl, "build", app, "-o", os.path.join(sub, "no", "such", "dir", "app"), timeout=120)
    expect("tdl build into a missing folder: a tdl error (no raw linker message)",
           r.returncode == 1 and r.stderr.startswith("tdl: error: cannot write") and " ld" not in r.stderr, r)
    r = run(tdl, "build", app, "-o", sub, timeout=120)
    expect("tdl build -o a directory: a tdl error", r.returncode == 1 and "is a directory" in r.stderr, r)
    mine = write(sub, "app.h", "/* my own header */\nint mine;\n")
    r = run(tdl, "build", "--lib", app, "-o", os.path.join(sub, "libapp.so"), timeout=120)
    expect("tdl build --lib refuses to replace a header it did not write",
           r.returncode == 1 and "was not written by tdl build" in r.stderr and open(mine).read().startswith("/* my own"), r)
    os.unlink(mine)
    r = run(tdl, "build", "--lib", app, "-o", os.path.join(sub, "libapp.so"), timeout=120)
    expect("tdl build --lib writes the library and its header", r.returncode == 0 and os.path.exists(mine), r)
    r = run(tdl, "build", "--lib", app, "-o", os.path.join(sub, "libapp.so"), timeout=120)
    expect("tdl build --lib again replaces its own header", r.returncode == 0, r)
    r = run(tdl, "build", "--lib", app, "-o", mine, timeout=120)
    expect("tdl build --lib -o the header itself: refused",
           r.returncode == 1 and "would be the same file" in r.stderr and os.path.getsize(os.path.join(sub, "libapp.so")) > 0, r)
    exe = os.path.join(sub, "app")
    r = run(tdl, "build", app, "-o", exe, timeout=120)
    ok = r.returncode == 0 and os.access(exe, os.X_OK)
    if ok:
        r = run(exe, timeout=20)
        ok = r.returncode == 0 and r.stdout == "[2.0, 4.0, 6.0]\n"
    expect("tdl build writes a working executable", ok, r)
    expect("tdl build leaves no temporaries", sorted(os.listdir(sub)) == ["app", "app.h", "app.tdl", "libapp.so", "util.tdl"],
           None)


def safetensors_bytes(names, metadata=None):
    import json
    header, data = ({"__metadata__": metadata} if metadata else {}), b""
    for n in names:
        header[n] = {"dtype": "F32", "shape": [1], "data_offsets": [len(data), len(data) + 4]}
        data += b"\x00\x00\x80\x3f"
    h = json.dumps(header).encode()
    return len(h).to_bytes(8, "little") + h + data


def readers(tdl, d):
    """Readers on pipes, /proc files and FIFOs; odd data; control characters; NUL bytes."""
    csv = write(d, "si.tdl", 'print(load_csv("/dev/stdin", header=true))\n')
    p = subprocess.run([tdl, "run", csv], input="a,b\n1,2\n3,4\n", capture_output=True, text=True, timeout=20)
    expect("load_csv reads a pipe (/dev/stdin)", p.returncode == 0 and p.stdout == "[[1.0, 2.0],\n [3.0, 4.0]]\n",
           Result(p.returncode, p.stdout, p.stderr, 0))
    prog = write(d, "proc.tdl", 'print(load_csv("/proc/self/status"))\n')
    r = run(tdl, "run", prog)
    expect("load_csv of a /proc file reads its real content (not an empty tensor)",
           r.returncode == 1 and "line 1, column 1: cannot parse 'Name:" in r.stderr, r)
    npy = write(d, "a.npy", b"")
    with open(npy, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + (118).to_bytes(2, "little") +
                b"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }".ljust(117) + b"\n" +
                b"\x00\x00\x80\x3f" * 3)
    prog = write(d, "npipe.tdl", 'print(load_npy("/dev/stdin"))\n')
    with open(npy, "rb") as f:
        p = subprocess.run([tdl, "run", prog], stdin=f, capture_output=True, text=True, timeout=20)
    expect("load_npy reads a pipe", p.returncode == 0 and p.stdout == "[1.0, 1.0, 1.0]\n", Result(p.returncode, p.stdout, p.stderr, 0))
    fifo = os.path.join(d, "fifo")
    os.mkfifo(fifo)
    for fn in ("load_npy", "load", "load_csv"):
        prog = write(d, "fifo.tdl", f'print({fn}("{fifo}"))\n')
        r = run(tdl, "run", prog, timeout=20)
        expect(f"{fn} of a FIFO nobody writes: a clear error, no hang", r.returncode == 1 and "fifo.tdl:1:7: error:" in r.stderr, r)
    prog = write(d, "z.tdl", "let z = zeros([1099511627776, 0])\nprint(z)\nprint(zeros([3, 0]))\n")
    r = run(tdl, "run", prog, timeout=20)
    expect("printing a zero-size tensor with a huge dim is O(1)",
           r.returncode == 0 and r.stdout.count("[]") == 6 + 3 and "..." in r.stdout, r)
    st = write(d, "clash.safetensors", safetensors_bytes(["a", "a.b"]))
    prog = write(d, "clash.tdl", f'print(load("{st}"))\n')
    r = run(tdl, "run", prog)
    expect("safetensors names 'a' and 'a.b' clash: an error, not a dropped tensor",
           r.returncode == 1 and "the tensor names 'a' and 'a.b' clash" in r.stderr, r)
    st = write(d, "clash2.safetensors", safetensors_bytes(["a.b.c", "a.b"]))
    prog = write(d, "clash2.tdl", f'print(load("{st}"))\n')
    r = run(tdl, "run", prog)
    expect("safetensors names 'a.b.c' and 'a.b' clash (either order)",
           r.returncode == 1 and "the tensor names 'a.b' and 'a.b.c' clash" in r.stderr, r)
    st = write(d, "ok.safetensors", safetensors_bytes(["a.b", "a.c", "d"]))
    prog = write(d, "ok.tdl", f'let m = load("{st}")\nprint(m.a.b + m.a.c + m.d)\n')
    r = run(tdl, "run", prog)
    expect("safetensors nested names still load", r.returncode == 0 and r.stdout == "[3.0]\n", r)
    # Names no field could reach (a gap in the indices, a space): a dict by those names.
    st = write(d, "dict.safetensors", safetensors_bytes(["x.0", "x.2", "bn 1.w"]))
    prog = write(d, "dict.tdl", f'let m = load("{st}")\nprint(m, m["x"]["2"] + m["bn 1"].w)\n')
    r = run(tdl, "run", prog)
    expect("safetensors names that are no field names load as dicts",
           r.returncode == 0 and r.stdout == '{"x": {"0": [1.0], "2": [1.0]}, "bn 1": {w: [1.0]}} [2.0]\n', r)
    # save()'s tree in the metadata that does not fit the tensors (names missing or twice,
    # not JSON, nested 200 000 deep): load() goes by the names, quickly, without a crash.
    for i, tree in enumerate(['["record",[["q","nope"]]]', '["list",["a.b","a.b"]]', "{not json",
                              "[" * 200000 + "]" * 200000, '["dict",[["x","a.b"],["x","d"]]]']):
        st = write(d, f"tree{i}.safetensors", safetensors_bytes(["a.b", "d"], {"tdl.tree": tree}))
        prog = write(d, f"tree{i}.tdl", f'print(load("{st}"))\n')
        r = run(tdl, "run", prog, timeout=20)
        expect(f"a safetensors tree in the metadata that does not fit ({tree[:20]}): loaded by the names",
               r.returncode == 0 and r.stdout == "{a: {b: [1.0]}, d: [1.0]}\n", r)
    cells = write(d, "esc.csv", "1,\x1b[31mred\x07\n")
    prog = write(d, "esc.tdl", f'print(load_csv("{cells}"))\n')
    r = run(tdl, "run", prog)
    expect("diagnostics escape control characters from data",
           r.returncode == 1 and "\\x1b[31mred\\x07" in r.stderr and "\x1b" not in r.stderr and "\x07" not in r.stderr, r)
    prog = write(d, "nul.tdl", f'print(load_npy("{npy}\x00junk"))\n')
    r = run(tdl, "run", prog)
    expect("a NUL byte in a path is an error, not a truncated path",
           r.returncode == 1 and "the path contains a NUL byte" in r.stderr, r)
    rows = "1,2,3,4,5,6,7,8,9,0\n" * 200000
    big = write(d, "big.csv", rows)
    prog = write(d, "bigcsv.tdl", f'let t = load_csv("{big}")\nprint(t.shape, sum(t))\n')
    r = run(tdl, "run", prog, timeout=60)
    expect("a 4 MB CSV loads", r.returncode == 0 and r.stdout == "[200000, 10] 9000000.0\n", r)


def graph_errors(tdl, d):
    """Plain mistakes inside graph fns are the errors eager mode gives (issue's crash list)."""
    for call, msg in (('take(x, "s")', "take(): 'idx' must be a tensor, got string"),
                      ("take(x, [])", "take(): 'idx' must be a tensor, got list"),
                      ("take(x, none)", "take(): 'idx' must be a tensor, got none"),
                      ("take(x, {a: 1.0})", "take(): 'idx' must be a tensor, got record"),
                      ("full([2], [])", "full(): 'value' must be a scalar, got list"),
                      ("concat([])", "cannot concatenate an empty list of tensors"),
                      ("stack([])", "cannot stack an empty list of tensors"),
                      ("randint(0, zeros([0]), [2])", "randint(): 'hi' must be an integer, got f32[0]"),
                      ("randint(x, 2, [2])", "randint(): 'lo' must be an integer, got f32[2]"),
                      # One binder for both engines (eager's Args, with the lists the builtins declare).
                      ("sum(x, axes=0)", "sum() has no parameter named 'axes'"),
                      ("sum()", "sum() is missing its argument 'x'"),
                      ("sum(x, 0, true, 4)", "sum() takes at most 3 arguments, got 4"),
                      ("reshape(x, [2], shape=[2])", "reshape() got two values for 'shape'"),
                      ("squeeze(x, axis=0)", "cannot squeeze axis 0 of size 2 (shape [2])"),
                      ("squeeze(x, 3)", "axis 3 is out of range for a tensor of rank 1")):
        for mode, src in (("eager", f"let x = [1.0, 2.0]\nprint({call})\n"),
                          ("graph", f"graph fn g(x) {{\n  return {call}\n}}\nprint(g([1.0, 2.0]))\n")):
            path = write(d, "g.tdl", src)
            r = run(tdl, "run", path)
            expect(f"{call} ({mode}): {msg}", r.returncode == 1 and f"error: {msg}" in r.stderr, r)
    # The same mistake in a graph fn and eagerly: the same first line (words and position).
    for param, body, call, msg in (("x", "let (a, b) = x\n  return a + b", "(1.0, 2.0, 3.0)",
                                    "2:7: error: cannot destructure a tuple of 3 elements into 2 names"),
                                   ("x", "let (a, b) = x\n  return a + b", "[1.0, 2.0, 3.0]",
                                    "2:7: error: cannot destructure a tensor of 3 elements into 2 names"),
                                   ("x", "return x[::0]", "[1, 2, 3]", "2:10: error: slice step cannot be zero"),
                                   ("x: f32[?]", "return concat([x, zeros([2, 2])])", "[1.0, 2.0]",
                                    "2:10: error: cannot concatenate shapes [2] and [2, 2] along axis 0"),
                                   ("x: f32[?, 3]", "return x @ zeros([2, 2])", "zeros([2, 3])",
                                    "2:12: error: cannot multiply shapes [2, 3] and [2, 2] (3 != 2)"),
                                   ("x: f32[?]", 'return x // [1, "a"]', "[1.0, 2.0]",
                                    "2:12: error: unsupported operand types for //: f32[2] and list")):
        path = write(d, "same.tdl", f"graph fn g({param}) {{\n  {body}\n}}\nprint(g({call}))\n")
        g, e = run(tdl, "run", path), run(tdl, "run", "--eager", path)
        first = lambda r: r.stderr.splitlines()[0] if r.stderr else ""
        expect(f"graph and eager agree: {msg}", g.returncode == e.returncode == 1 and first(g) == first(e)
               and msg in first(g), g if first(g) != first(e) else e)
    # Window sizes no tensor has: the builtin's error, not an overflowed window.
    for call, msg in (("conv2d(x, w, dilation=4611686018427387904)", "conv2d(): 'dilation' must be at most 2^32"),
                      ("conv2d(x, w, padding=[4611686018427387904, 1])", "conv2d(): 'padding' must be at most 2^32"),
                      ("max_pool2d(x, 4611686018427387904)", "max_pool2d(): 'size' must be at most 2^32")):
        r = run(tdl, "run", write(d, "conv.tdl", f"let x = zeros([1, 8, 8, 2])\nlet w = zeros([3, 3, 2, 4])\nprint({call})\n"))
        expect(f"{call}: {msg}", r.returncode == 1 and f"conv.tdl:3:7: error: {msg}" in r.stderr, r)
    # A class id outside the classes: an error naming the op, not one_hot's zero row (a loss of 0).
    for mode, src in (("eager", "import nn\nprint(nn.sparse_cross_entropy([5, 0], [[1.0, 2.0], [1.0, 2.0]]))\n"),
                      ("graph", "import nn\ngraph fn g(i, l) {\n  return nn.sparse_cross_entropy(i, l)\n}\n"
                                "print(g([0, -1], [[1.0, 2.0], [1.0, 2.0]]))\n")):
        r = run(tdl, "run", write(d, "sce.tdl", src))
        expect(f"sparse_cross_entropy with a class id out of range ({mode})",
               r.returncode == 1 and "error: assertion failed: sparse_cross_entropy: a class id is outside" in r.stderr
               and r.stdout == "", r)
    path = write(d, "kw.tdl", "graph fn g(x) {\n  assert(cond=sum(x) > 0.0)\n  return where(cond=x > 1.0, a=x, b=0.0)\n}\n"
                              "print(g([1.0, 2.0]))\n")
    for mode in ("--eager", "--trace-report"):
        r = run(tdl, "run", mode, path)
        expect(f"where(cond=...) and assert(cond=...) take eager's parameter names ({mode})",
               r.returncode == 0 and r.stdout == "[0.0, 2.0]\n", r)
    path = write(d, "leaves.tdl", 'graph fn g(x) {\n  return tree_leaves((x, none, "s", {a: x}))\n}\n'
                                  'print(g([1.0]))\nprint(tree_leaves(([1.0], none, "s", {a: [1.0]})))\n')
    r = run(tdl, "run", path)
    expect("tree_leaves keeps none and string leaves in compiled code",
           r.returncode == 0 and r.stdout == '[[1.0], none, "s", [1.0]]\n' * 2, r)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tdl", required=True)
    tdl = os.path.abspath(ap.parse_args().tdl)
    d = tempfile.mkdtemp(prefix="tdl-bad-input-")
    try:
        parse_limits(tdl, d)
        numbers(tdl, d)
        atomic_writes(tdl, d)
        build_outputs(tdl, d)
        readers(tdl, d)
        graph_errors(tdl, d)
    finally:
        subprocess.run(["rm", "-rf", d])
    return summary()


if __name__ == "__main__":
    sys.exit(main())
