#!/usr/bin/env python3
"""A fuzzer for graph fns: random programs whose graph fn is called with random argument
kinds, run through `tdl run` (meant for the ASan/UBSan build: `make asan`, then
`tests/fuzz/fuzz_graph.py --tdl build-asan/tdl --seconds 1800`).

Each program is a graph fn built from random statements (lets, reassignments, ifs on data,
loops over ranges and tensors, tapes and gradients, calls of builtins with valid and odd
arguments, indexing and slicing) and called several times with arguments of random kinds
(tensors of several shapes and dtypes, scalars, strings, none, lists, tuples, records). A
run must end with exit 0 or a clean script error (exit 1 with `file:line:col: error:`):
a signal, exit 3 (internal error), a sanitizer report or a hang is a finding, saved to
tests/fuzz/graph-finding-N.tdl. Deterministic per seed."""
import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "scripts"))
import tdl_tables  # noqa: E402

# The unary builtins of the elementwise op table (runtime/ops.def).
UNARY = [o["name"] for o in tdl_tables.elementwise_ops() if o["kind"] == "unary" and o["builtin"]]
REDUCE = ["sum", "mean", "max", "min", "prod", "all", "any", "argmax", "argmin", "logsumexp"]
BINARY = ["+", "-", "*", "/", "+", "-", "*", "//", "%", "**", "@", "==", "<", ">=", "and", "&"]
SHAPE = ["reshape(E, [-1])", "transpose(E)", "expand_dims(E, 0)", "squeeze(E)", "flatten(E)", "concat([E, E])",
         "stack([E, E])", "broadcast_to(E, [2, 3])", "tile(E, [2])", "pad(E, [[1, 0]])", "one_hot(E, 4)",
         "take(E, [0, 1])", "clip(E, 0.0, 1.0)", "where(E > 0.0, E, 0.0)", "cast(E, f64)", "cast(E, i64)",
         "maximum(E, 0.5)", "pow(E, 2.0)", "dot(E, E)", "outer(E, E)", "matmul(E, E)", "zeros_like(E)",
         "ones_like(E)", "tree_leaves((E, none))", "len(E)", "str(E)", "leaky_relu(E, 0.2)", "elu(E)",
         "E[len(E) - 1:]", "arange(len(E))", "zeros([len(E) + 1])", "reshape(E, [len(E), -1])"]
ODD = ['"s"', "none", "[]", "()", "{a: 1.0}", "f32", "fn(v) => v", "zeros([0])", "[[1.0], [2.0, 3.0]]",
       "9223372036854775807", "-1", "0", "1.5", "true", "float(\"nan\")", "zeros([2, 0])"]
ARGS = ["[1.0, 2.0, 3.0]", "[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]", "zeros([0])", "2.5", "3", "true", "-1",
        "cast([1, 2, 3], i64)", "cast([0.5, 1.5], f64)", '"s"', "none", "[1.0, [2.0]]", "([1.0], 2)",
        "{w: [1.0, 2.0], b: 0.5}", "ones([2, 2, 2])", "zeros([3, 0])", "[true, false]", "rand([4])",
        "9223372036854775807", "float(\"inf\")"]
CRASH = ("internal error", "AddressSanitizer", "runtime error:", "LeakSanitizer", "Segmentation fault",
         "terminate called", "Aborted")


class Gen:
    def __init__(self, rng):
        self.r = rng
        self.vars = ["x", "y"]
        self.depth = 0

    def atom(self):
        r = self.r
        k = r.random()
        if k < 0.65:
            return r.choice(self.vars)
        if k < 0.93:
            return r.choice(["1.0", "2", "0.5", "[1.0, 2.0]", "zeros([2])", "ones([2, 3])", "-1.0"])
        return r.choice(ODD)

    def expr(self, d=0):
        r = self.r
        if d > 3:
            return self.atom()
        k = r.random()
        if k < 0.15:
            return self.atom()
        if k < 0.3:
            return f"{r.choice(UNARY)}({self.expr(d + 1)})"
        if k < 0.35:
            red = r.choice(REDUCE)
            extra = r.choice(["", ", 0", ", -1", ", axis=1", ", keepdims=true", ", axes=1", ", 5"])
            return f"{red}({self.expr(d + 1)}{extra})"
        if k < 0.55:
            return f"({self.expr(d + 1)} {r.choice(BINARY)} {self.expr(d + 1)})"
        if k < 0.7:
            return r.choice(SHAPE).replace("E", self.expr(d + 1))
        if k < 0.8:
            idx = r.choice(["0", "-1", "1:", ":1", "::2", "i", "0, 1", "-0.5", "true", "[0, 1]", "n"])
            return f"{self.expr(d + 1)}[{idx}]"
        if k < 0.85:
            return f"{self.expr(d + 1)}.shape[0]"
        return self.atom()

    def stmt(self, depth=0):
        r = self.r
        k = r.random()
        name = r.choice(self.vars)
        if k < 0.3 or depth > 2:
            v = f"v{len(self.vars)}"
            self.vars.append(v)
            return [f"var {v} = {self.expr()}"]
        if k < 0.45:
            return [f"{name} = {self.expr()}"]
        if k < 0.6:
            body = self.block(depth + 1)
            other = self.block(depth + 1) if r.random() < 0.5 else None
            out = [f"if {self.expr()} > 0.0 {{"] + body
            out += (["} else {"] + other + ["}"]) if other else ["}"]
            return out
        if k < 0.7:
            rng = r.choice(["range(3)", "range(n)", "range(n - 5, n, 2)", "range(0, 10, -1)", "x", "[1.0, 2.0]"])
            return [f"for i in {rng} {{"] + self.block(depth + 1) + ["}"]
        if k < 0.78:
            return [f"while sum({name}) < 10.0 and i0 < 5 {{", f"  {name} = {name} + 1.0", "  i0 += 1", "}"]
        if k < 0.88:
            v = f"v{len(self.vars)}"
            self.vars.append(v)
            return ["with tape() as t {", f"  let l = sum({self.expr()} * x)", "}",
                    f"var {v} = t.gradient(l, {r.choice(['x', 'y', '[1.0, 2.0]', '(x, y)', '{a: x}'])})"]
        if k < 0.905:
            # element loops (issue 17: if-converted, counted, native): a for or the seed's
            # while form, element reads and updates by the counter (or from the end)
            at = r.choice(["i", "i", "-1 - i", "i // 2"])
            val = r.choice([f"{name}[{at}] * 2.0", f"{name}[i] + i", "1.5", f"{name}[i] - {name}[{at}]"])
            body = [f"    if {name}[i] > 0.5 {{ {name}[{at}] = {val} }} else {{ {name}[{at}] += 1.0 }}"]
            if r.random() < 0.5:
                return [f"for i in range({name}.shape[0]) {{"] + body + ["}"]
            cmp = r.choice(["<", "<", "<="])
            return ["var i = 0", f"while i {cmp} {name}.shape[0] {{"] + body + ["    i += 1", "}"]
        if k < 0.93:
            return [f"{name}[0] = {self.expr()}"]
        if k < 0.96:
            return ["break"] if depth > 0 else [f"print({self.expr()})"]
        return [f"return {self.expr()}"]

    def block(self, depth):
        saved = list(self.vars)
        out = []
        for _ in range(self.r.randint(1, 3)):
            out += ["  " + s for s in self.stmt(depth)]
        self.vars = saved
        return out

    def program(self):
        r = self.r
        ann = r.choice(["", "", "", "", ": f32[?]", ": f32[3]", ": i64", ": {w: f32[2], b: f32}"])
        body = ["  var i0 = 0", "  let n = 4"]
        for _ in range(r.randint(1, 4)):
            body += ["  " + s for s in self.stmt()]
        body.append(f"  return ({r.choice(self.vars)}, {self.expr()})")
        ret = r.choice(["", "", "", "", " -> (f32[?], f32)", " -> f32[3]"])
        lines = [f"graph fn g(x{ann}, y){ret} {{"] + body + ["}"]
        pick = lambda: r.choice(ARGS[:2]) if r.random() < 0.6 else r.choice(ARGS)
        for _ in range(r.randint(1, 4)):
            lines.append(f"print(g({pick()}, {pick()}))")
        return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tdl", required=True)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    tdl = os.path.abspath(a.tdl)
    d = tempfile.mkdtemp(prefix="tdl-fuzz-graph-")
    env = dict(os.environ, TDL_CACHE_DIR="off", ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1",
               UBSAN_OPTIONS="print_stacktrace=1")
    here = os.path.dirname(os.path.abspath(__file__))
    end = time.time() + a.seconds
    runs = findings = clean_errors = 0
    seed = a.seed
    procs = []
    while time.time() < end or procs:
        while len(procs) < a.jobs and time.time() < end:
            src = Gen(random.Random(seed)).program()
            path = os.path.join(d, f"p{seed}.tdl")
            with open(path, "w") as f:
                f.write(src)
            p = subprocess.Popen([tdl, "run", path], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
            procs.append((p, path, src, seed, time.time()))
            seed += 1
        time.sleep(0.005)
        for item in list(procs):
            p, path, src, s, t0 = item
            if p.poll() is None and time.time() - t0 < 60:
                continue
            timeout = p.poll() is None
            if timeout:
                p.kill()
            err = p.stderr.read().decode("utf-8", "replace")
            p.wait()
            procs.remove(item)
            runs += 1
            bad = timeout or p.returncode not in (0, 1) or any(c in err for c in CRASH)
            if p.returncode == 1 and not re.search(r"p\d+\.tdl:\d+:\d+: error: ", err):
                bad = True
            clean_errors += p.returncode == 1 and not bad
            if bad:
                findings += 1
                out = os.path.join(here, f"graph-finding-{s}.tdl")
                with open(out, "w") as f:
                    f.write(src)
                why = "timeout" if timeout else f"exit {p.returncode}"
                print(f"FINDING seed {s}: {why}: {err.strip()[-400:]} (saved as {out})", flush=True)
            os.unlink(path)
    subprocess.run(["rm", "-rf", d])
    print(f"fuzz_graph: {runs} programs in {a.seconds:.0f} s, {clean_errors} clean script errors, "
          f"{findings} findings")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
