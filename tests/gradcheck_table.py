#!/usr/bin/env python3
"""Every differentiable op of the builtin table, gradient-checked against finite differences
in both engines: eager tapes and the IR's reverse mode inside graph fns, for a scalar
target, a non-scalar target (summed first, SPEC §7) and second order. The elementwise ops
come from runtime/ops.def (kDiff; an op the language cannot call, neither a builtin nor an
operator below, fails the test), the other builtins from `tdl builtins --json`
("differentiable", the BUILTIN_GRAD list of frontend/builtins.def), called with the
sample arguments of scripts/tdl_tables.py — each call is first tried eagerly, and a
builtin without a call that runs fails the test. A new op is checked without touching
this file.

Usage: tests/gradcheck_table.py --tdl build/tdl"""
import argparse
import os
import json
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "scripts"))
import tdl_tables  # noqa: E402

# The operator-only ops, as TDL expressions.
OPERATORS = {"add": "{a} + {b}", "sub": "{a} - {b}", "mul": "{a} * {b}", "div": "{a} / {b}",
             "mod": "{a} % {b}", "neg": "-{a}"}

PRELUDE = """import "gradcheck/lib/check.tdl" as c
seed(7)
# A non-scalar target: the gradient of y is that of sum(y) (SPEC §7).
fn tgrad_ns(op, x) {
    with tape() as t {
        let y = op(x)
    }
    return t.gradient(y, x)
}
graph fn ggrad_ns(op, x) {
    with tape() as t {
        let y = op(x)
    }
    return t.gradient(y, x)
}
fn nonscalar(name, op, x) {
    let want = c.numgrad(fn(z) => sum(op(z)), x)
    c.report(f"{name} eager non-scalar", c.relerr(tgrad_ns(op, x), want))
    c.report(f"{name} graph non-scalar", c.relerr(ggrad_ns(op, x), want))
}
"""


def call(op, a, b=None):
    if op["builtin"]:
        return f"{op['name']}({a})" if b is None else f"{op['name']}({a}, {b})"
    if op["name"] in OPERATORS:
        return OPERATORS[op["name"]].format(a=a, b=b)
    return None


def builtin_calls(tdl, ops):
    """(name, call) for the differentiable builtins that are not elementwise ops: the first
    sample call (by keyword where possible) that runs eagerly on x: f64[2, 3]."""
    sigs = json.loads(subprocess.run([tdl, "builtins", "--json"], capture_output=True, text=True, check=True).stdout)
    elementwise = {o["name"] for o in ops}
    out = []
    with tempfile.TemporaryDirectory() as d:
        for sig in sigs:
            if not sig["differentiable"] or sig["name"] in elementwise:
                continue
            calls = [c for _, c in reversed(tdl_tables.sample_calls(sig))]
            ok = None
            for c in calls:
                path = os.path.join(d, "probe.tdl")
                with open(path, "w") as f:
                    f.write(f"let x = cast([[0.3, -1.2, 0.7], [1.1, 0.4, -0.6]], f64)\nprint(sin({c}))\n")
                r = subprocess.run([tdl, "run", path], capture_output=True, text=True, timeout=60,
                                   env=dict(os.environ, TDL_CACHE_DIR="off"))
                if r.returncode == 0:
                    ok = c
                    break
            if ok is None:
                raise SystemExit(f"{sig['name']}: no sample call runs ({calls}); extend scripts/tdl_tables.py")
            out.append((sig["name"], ok))
    return out


def unary_checks(n, x_init, f_scalar, f_tensor):
    """The six checks of a function of one tensor x: scalar target (eager, graph),
    non-scalar target (both), second order (both)."""
    lines = [f"let x_{n} = {x_init}", f"let f_{n} = {f_scalar}",
             f'c.check("{n} eager", f_{n}, x_{n})', f'c.gcheck("{n} graph", f_{n}, x_{n})',
             f'nonscalar("{n}", {f_tensor}, x_{n})',
             f'c.check_second("{n} eager second", f_{n}, x_{n})', f'c.gcheck_second("{n} graph second", f_{n}, x_{n})']
    return lines, [f"{n} {k}" for k in ("eager", "graph", "eager non-scalar", "graph non-scalar", "eager second",
                                        "graph second")]


def program(ops, builtins=()):
    lines, expected = [PRELUDE], []

    def add(pair):
        lines.extend(pair[0])
        expected.extend(pair[1])
    # The other differentiable builtins, through sin() so that every gradient is non-trivial.
    for n, c in builtins:
        add(unary_checks(n, "c.rnd([2, 3])", f"fn(x) => sum(sin({c}))", f"fn(x) => sin({c})"))
    for op in ops:
        if "kDiff" not in op["props"]:
            continue
        n = op["name"]
        dom = "c.pos" if "kPos" in op["props"] else "c.rnd"
        f = call(op, "x") if op["kind"] == "unary" else call(op, "a", "b")
        if f is None:
            raise SystemExit(f"ops.def: '{n}' is differentiable but neither a builtin nor a known operator")
        if op["kind"] == "unary":
            add(unary_checks(n, f"{dom}([2, 3])", f"c.weighted(fn(x) => {f}, [2, 3])", f"fn(x) => {f}"))
            continue
        # b broadcasts along a's rows; kept positive (divisors, alpha, exponents). Both
        # operands' gradients first, then a's alone as a function of one tensor.
        lines.extend([f"let b_{n} = c.pos([3])", f"let w_{n} = c.rnd([2, 3])",
                      f"let g_{n} = fn(a, b) => sum(({f}) * w_{n})",
                      f'c.check2("{n} both eager", g_{n}, {dom}([2, 3]), b_{n})',
                      f'c.gcheck2("{n} both graph", g_{n}, {dom}([2, 3]), b_{n})'])
        expected += [f"{n} both eager", f"{n} both graph"]
        add(unary_checks(n, f"{dom}([2, 3])", f"fn(a) => g_{n}(a, b_{n})", f"fn(a) => {call(op, 'a', f'b_{n}')}"))
    return "\n".join(lines) + "\n", expected


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tdl", required=True)
    ap.add_argument("--keep", help="write the generated program here")
    args = ap.parse_args()
    ops = tdl_tables.elementwise_ops()
    src, expected = program(ops, builtin_calls(args.tdl, ops))
    # The program imports the shared check library by a path relative to itself.
    path = os.path.join(HERE, f".gradcheck_table_{os.getpid()}.tdl") if not args.keep else args.keep
    try:
        with open(path, "w") as f:
            f.write(src)
        r = subprocess.run([args.tdl, "run", path], capture_output=True, text=True, timeout=1200,
                           env=dict(os.environ, TDL_CACHE_DIR="off"))
    finally:
        if not args.keep:
            os.unlink(path)
    got = r.stdout.splitlines()
    bad = [l for l in got if not l.endswith(" ok")]
    names = [l[:-3] for l in got if l.endswith(" ok")]
    missing = [e for e in expected if e not in names]
    print(f"{len(names)} of {len(expected)} checks ok")
    for l in bad:
        print("FAIL:", l)
    for m in missing:
        print("MISSING:", m)
    if r.returncode != 0:
        print(r.stderr[-3000:])
    sys.exit(0 if r.returncode == 0 and not bad and not missing else 1)


if __name__ == "__main__":
    main()
