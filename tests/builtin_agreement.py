#!/usr/bin/env python3
"""Graph fns accept what eager mode accepts: every builtin of the table (`tdl builtins
--json`: names and parameters as the one binder declares them) is called inside a graph fn
with valid arguments (positional, and optional ones by keyword), a misspelt keyword, a
missing argument, a bad axis, mismatched shapes and a wrong type, once run eagerly
(`--eager`) and once traced and compiled. Both runs must print the same output (numbers
within SPEC §11), or fail with the same error text: message, location and call chain.

Arguments come from a sample per parameter name (SAMPLES), so a new builtin is covered
when its parameters reuse known names; a builtin with an unknown required parameter fails
the test, naming the parameter to add here.

Usage: tests/builtin_agreement.py --tdl build/tdl [-k NAME] [-v]"""
import argparse
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
import tdl_tables  # noqa: E402

X = "[[1.0, -2.0, 3.0], [4.0, 5.0, -6.0]]"
SAMPLES = tdl_tables.ARG_SAMPLES  # a valid value per parameter name (x is the graph fn's argument)
# Builtins whose calls do not compare: effects outside the program (files, the process,
# the clock, the terminal), randomness (a graph fn draws at run time from its own stream),
# and the variadic ones that bind their arguments themselves.
SKIP = {
    "print", "plot", "progress", "exit", "args", "time", "tape", "tree_map", "set_printoptions", "help",
    "load_npy", "save_npy", "load_csv", "save", "load",
    # a file of compiled code; a graph fn cannot call the model it returns (tests/model/test_serving.py)
    "load_model",
    "seed", "rand", "randn", "randint", "permutation",
    # variadic; its values in both engines against NumPy's: tests/lang/numpy_staples.tdl
    "einsum",
    # variadic; both engines in tests/lang/enumerate_zip_reversed.tdl
    "zip",
}
# Builtins that return a function: the valid calls apply it to x (a graph fn returns data).
APPLY = {"grad", "value_and_grad"}
# Known disagreements, each with its reason: listed here, they are expected to differ (and
# the test fails when one starts to agree, so that the entry is removed).
KNOWN = {}
# Bad values per parameter name.
BAD = {"axis": ["5", "1.5"], "shape": ["[5, 5]", "[2.5, 3]", "[2, -3]"], "b": ["[1.0, 2.0, 3.0, 4.0]"], "x": ['"s"'],
       "perm": ["[0, 0]"], "dtype": ['"f32"'], "idx": ["[7]", "[0.5]"], "n": ["-2"]}


def cases(sig):
    """(label, call) pairs for one builtin."""
    name, params, req = sig["name"], sig["params"], sig["required"]
    try:
        out = tdl_tables.sample_calls(sig, (lambda c: f"{c}(x)") if name in APPLY else (lambda c: c))
    except KeyError as e:
        raise SystemExit(str(e))
    pos = [SAMPLES[p] for p in params[:req]]
    typo = (params[req:] or params)[0] + "s"
    out.append(("misspelt keyword", f"{name}({', '.join(pos + [f'{typo}=1'])})"))
    if req:
        out.append(("missing argument", f"{name}({', '.join(pos[:-1])})"))
    for i, p in enumerate(params):
        for k, bad in enumerate(BAD.get(p, [])):
            args = list(pos) if i < req else pos + [f"{p}={bad}"]
            if i < req:
                args[i] = bad
            out.append((f"bad {p} {k}", f"{name}({', '.join(args)})"))
    return out


def program(call):
    return f"graph fn g(x) {{\n    return {call}\n}}\nprint(g({X}))\n"


ERR = re.compile(r"^\S*:\d+:\d+: error: (.*)$")
NUM = re.compile(r"-?(?:\d+\.?\d*(?:e[-+]?\d+)?|inf|nan)")


def same_output(a, b):
    """Equal text, numbers within SPEC §11 (1e-5 relative: compiled f32 math may differ in
    the last digit)."""
    if NUM.sub("#", a) != NUM.sub("#", b):
        return False
    for x, y in zip(NUM.findall(a), NUM.findall(b)):
        if x != y and abs(float(x) - float(y)) > 1e-5 * max(abs(float(x)), abs(float(y)), 1e-30):
            return False
    return True


def outcome(tdl, path, eager):
    cmd = [tdl, "run"] + (["--eager"] if eager else []) + [path]
    r = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=60,
                       env=dict(os.environ, TDL_CACHE_DIR="off"))
    errors = [m.group(1) for m in map(ERR.match, r.stderr.splitlines()) if m]
    return r.returncode, r.stdout, errors, r.stderr


def check(tdl, d, i, label, call):
    path = os.path.join(d, f"case{i}.tdl")
    with open(path, "w") as f:
        f.write(program(call))
    e = outcome(tdl, path, True)
    g = outcome(tdl, path, False)
    if e[0] == g[0] and e[3] == g[3] and same_output(e[1], g[1]):
        return None
    return (f"{label}: {call}\n  eager: exit {e[0]}, {e[1].strip() or e[3].strip()}\n"
            f"  graph: exit {g[0]}, {g[1].strip() or g[3].strip()}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tdl", required=True)
    ap.add_argument("-k", help="only builtins whose name contains this")
    ap.add_argument("-v", action="store_true", help="print every case")
    args = ap.parse_args()
    sigs = json.loads(subprocess.run([args.tdl, "builtins", "--json"], capture_output=True, text=True,
                                     check=True).stdout)
    todo = []
    for s in sigs:
        if s["name"] in SKIP or (args.k and args.k not in s["name"]):
            continue
        if s["params"] is None:
            raise SystemExit(f"{s['name']}: binds its own arguments; add it to SKIP with a reason")
        todo += [(f"{s['name']} {label}", call) for label, call in cases(s)]
    with tempfile.TemporaryDirectory() as d, concurrent.futures.ThreadPoolExecutor(os.cpu_count() or 2) as ex:
        futs = [ex.submit(check, args.tdl, d, i, label, call) for i, (label, call) in enumerate(todo)]
        bad = [f.result() for f in futs]
    if args.v:
        for label, call in todo:
            print(label, "|", call)
    fails = []
    for (label, call), b in zip(todo, bad):
        if label in KNOWN and not b:
            fails.append(f"{label}: now agrees; remove it from KNOWN")
        elif b and label not in KNOWN:
            fails.append(b)
    for b in fails:
        print("DIFFER", b)
    known = sum(1 for (label, _), b in zip(todo, bad) if label in KNOWN and b)
    if known:
        print(f"{known} known disagreements: " + "; ".join(sorted(set(KNOWN.values()))))
    print(f"{len(todo) - len(fails)} of {len(todo)} calls agree ({len(sigs) - len(SKIP)} builtins)")
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
