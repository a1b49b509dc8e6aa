"""TDL's tables, read from their one source for tools and tests: the builtin names
(frontend/builtins.def, with the elementwise builtins of runtime/ops.def in place of its
#include) and the elementwise ops with their columns (runtime/ops.def)."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _strip_comments(text):
    return "\n".join(l for l in text.splitlines() if not l.strip().startswith("//"))


def _split_args(s):
    """Top-level comma-separated macro arguments of s (parentheses and strings nest)."""
    out, depth, cur, quote = [], 0, "", False
    for ch in s:
        if quote:
            cur += ch
            if ch == '"':
                quote = False
            continue
        if ch == '"':
            quote = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
            continue
        cur += ch
    out.append(cur.strip())
    return out


def elementwise_ops(root=ROOT):
    """The entries of runtime/ops.def, in order: dicts with kind ("unary"/"binary"), enum,
    name, builtin (bool), params (binary), props (set of names), doc, math, grads."""
    text = _strip_comments(open(os.path.join(root, "runtime", "ops.def")).read())
    ops = []
    for m in re.finditer(r"^TDL_(UNARY|BINARY)_(OP|BUILTIN)\(", text, re.M):
        i, depth = m.end(), 1
        while depth:
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        args = _split_args(text[m.end():i - 1])
        unary = m.group(1) == "UNARY"
        if not unary:
            params = args.pop(2).strip('"')
        else:
            params = "x"
        props = {p.strip() for p in args[2].split("|") if p.strip() not in ("", "0")}
        ops.append({"kind": "unary" if unary else "binary", "enum": args[0], "name": args[1],
                    "builtin": m.group(2) == "BUILTIN", "params": params, "props": props,
                    "doc": args[3].strip('"'), "math": args[4], "grads": args[5:]})
    return ops


def builtin_names(root=ROOT):
    """Every builtin name, in the order of frontend/builtins.def."""
    text = _strip_comments(open(os.path.join(root, "frontend", "builtins.def")).read())
    names = []
    for line in text.splitlines():
        if line.startswith('#include "runtime/ops.def"'):
            names += [o["name"] for o in elementwise_ops(root) if o["builtin"]]
        elif line.startswith('#include "vm/composites.def"'):
            comp = _strip_comments(open(os.path.join(root, "vm", "composites.def")).read())
            names += re.findall(r"^TDL_COMPOSITE\((\w+),", comp, re.M)
        elif line.startswith('#include "vm/str_methods.def"'):
            meth = _strip_comments(open(os.path.join(root, "vm", "str_methods.def")).read())
            names += ["_str_" + n for n in re.findall(r"TDL_STR_METHOD\((\w+)\)", meth)]
        elif not line.startswith("#"):
            names += re.findall(r"BUILTIN\((\w+)\)", line)
    return names


# A valid argument for each builtin parameter name, as TDL source where `x` is a tensor
# [[1.0, -2.0, 3.0], [4.0, 5.0, -6.0]]-like of shape [2, 3] (tests build calls from these:
# tests/builtin_agreement.py, tests/gradcheck_table.py).
ARG_SAMPLES = {
    "x": "x", "a": "x", "b": "[0.5, 2.0, 1.5]", "shape": "[2, 3]", "dtype": "f64", "value": "2.5",
    "start": "1", "stop": "7", "step": "2", "num": "4", "n": "3", "m": "2", "lo": "0.0", "hi": "2.0",
    "cond": "x > 0.0", "alpha": "0.2", "axis": "1", "keepdims": "true", "perm": "[1, 0]", "xs": "[x, x * 2.0]",
    "idx": "[1, 0]", "reps": "[2, 1]", "widths": "[[1, 0], [0, 2]]", "tree": "(x, [x * 2.0])",
    "f": "fn(v) => sum(v * v)", "argnums": "0", "spec": '".2f"', "message": '"m"', "code": "0",
    "w": "reshape([0.5, -1.0], [1, 1, 1, 2])", "size": "2", "k": "1", "descending": "true", "n_or_sizes": "1", "rtol": "0.001", "atol": "0.0001",
}


# Whole sample calls for builtins whose arguments are not made of the ones above (the
# convolutions want rank-4 tensors): still a function of the [2, 3] tensor x.
CALL_SAMPLES = {
    "conv2d": ["conv2d(reshape(x, [1, 2, 3, 1]), reshape([0.5, -1.0, 2.0, 0.25], [2, 2, 1, 1]), padding=\"same\")"],
    "conv1d": ["conv1d(reshape(x, [2, 3, 1]), reshape([0.5, -1.5], [2, 1, 1]), stride=1)"],
    "conv2d_transpose": ["conv2d_transpose(reshape(x, [1, 2, 3, 1]), reshape([0.5, -1.0, 2.0, 0.25], [2, 2, 1, 1]), "
                         "stride=2)"],
    "max_pool2d": ["max_pool2d(reshape(x, [1, 2, 3, 1]), 2, stride=1, padding=\"same\")"],
    "avg_pool2d": ["avg_pool2d(reshape(x, [1, 2, 3, 1]), [2, 2], stride=1, padding=\"same\")"],
}


def sample_calls(sig, wrap=lambda c: c):
    """Valid calls of a builtin (`tdl builtins --json` entry): its required parameters
    positionally, then also its optional ones by keyword. Raises KeyError naming a required
    parameter without a sample."""
    name, params, req = sig["name"], sig["params"], sig["required"]
    if name in CALL_SAMPLES:
        return [("valid", wrap(c)) for c in CALL_SAMPLES[name]]
    missing = [p for p in params[:req] if p not in ARG_SAMPLES]
    if missing:
        raise KeyError(f"{name}: no sample for parameter(s) {missing}; add them to ARG_SAMPLES")
    pos = [ARG_SAMPLES[p] for p in params[:req]]
    out = [("valid", wrap(f"{name}({', '.join(pos)})"))]
    opt = [p for p in params[req:] if p in ARG_SAMPLES]
    if opt:
        out.append(("keywords", wrap(f"{name}({', '.join(pos + [f'{p}={ARG_SAMPLES[p]}' for p in opt])})")))
    return out
