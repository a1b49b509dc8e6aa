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
        elif not line.startswith("#"):
            names += re.findall(r"BUILTIN\((\w+)\)", line)
    return names
