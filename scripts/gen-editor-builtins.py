#!/usr/bin/env python3
"""Writes the builtin-function lists of the editor modes (Vim syntax, Emacs mode, VS Code
grammar) from the builtin table (frontend/builtins.def with runtime/ops.def), so that a
new builtin reaches every editor by running this script. The dtype names (bool, i32, ...)
have their own highlighting and are left out.

Usage: scripts/gen-editor-builtins.py [--check]   (--check: fail if a list is stale)"""
import argparse
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import tdl_tables  # noqa: E402

ROOT = tdl_tables.ROOT
DTYPES = {"bool", "i32", "i64", "f32", "f64"}


KEYWORDS = {"var"}


def wrap(words, first, rest, width=96):
    """Lines of space-separated words, the first starting with `first`, the others `rest`."""
    lines, cur = [], []
    for w in words:
        prefix = rest if lines else first
        if cur and len(prefix) + len(" ".join(cur + [w])) > width:
            lines.append(prefix + " ".join(cur))
            cur = []
        cur.append(w)
    lines.append((rest if lines else first) + " ".join(cur))
    return lines


def vim(text, names):
    lines = wrap(names, "syn keyword tdlBuiltin ", "syn keyword tdlBuiltin ")
    return re.sub(r"(?m)^(syn keyword tdlBuiltin .*\n)+", "\n".join(lines) + "\n", text, count=1)


def emacs(text, names):
    quoted = [f'"{n}"' for n in names]
    body = wrap(quoted, "  '(", "    ")
    body[-1] += ")"
    new = "(defconst tdl-builtins\n" + "\n".join(body) + "\n"
    return re.sub(r"\(defconst tdl-builtins\n(?:.*\n)*?(?=  \"Builtin functions)", lambda m: new, text, count=1)


def vscode(text, names):
    data = json.loads(text)
    alt = "|".join(sorted(names))
    want = f"(?<![.\\w])({alt})\\b"
    old = data["repository"]["builtin"]["match"]
    if old == want:
        return text
    # Replace the one string in place (the file's layout stays as it is).
    return text.replace(json.dumps(old)[1:-1], json.dumps(want)[1:-1], 1)


FILES = [("editors/vim/syntax/tdl.vim", vim), ("editors/emacs/tdl-mode.el", emacs),
         ("editors/vscode/syntaxes/tdl.tmLanguage.json", vscode)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    # `var` is a keyword as well as a builtin (var(x)): editors keep it a keyword.
    names = [n for n in tdl_tables.builtin_names() if n not in DTYPES and n not in KEYWORDS and not n.startswith("_")]
    stale = []
    for rel, fix in FILES:
        path = os.path.join(ROOT, rel)
        text = open(path).read()
        new = fix(text, names)
        if new == text:
            continue
        stale.append(rel)
        if not args.check:
            tmp = path + ".tmp"
            with open(tmp, "w") as f:
                f.write(new)
            os.replace(tmp, path)
    if args.check and stale:
        print("stale builtin lists (run scripts/gen-editor-builtins.py):", ", ".join(stale))
        sys.exit(1)
    print("updated: " + ", ".join(stale) if stale else "the editors' builtin lists are up to date")


if __name__ == "__main__":
    main()
