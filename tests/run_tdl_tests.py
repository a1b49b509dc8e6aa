#!/usr/bin/env python3
"""Runs .tdl test files through the `tdl` tool in a mode the conformance
runner does not have.

  --mode check        each file states its diagnostics with `#! L:C TEXT`
                      (and optional `#~ TEXT`, `# exit: N`) in the format of
                      ../shared/conformance; `tdl check FILE` must produce them.
  --mode check-valid  every file must pass `tdl check` with no output at all.

Prints one line per file and `N passed, N failed`; exits 1 on any failure.
"""
import argparse
import os
import re
import subprocess
import sys


def parse_spec(path):
    diags, stderr, exit_code = [], [], None
    with open(path, encoding="utf-8") as f:
        for line in f:
            s = line.strip()
            m = re.match(r"#!\s*(\d+)(?::(\d+))?\s*(.*)", s)
            if m:
                diags.append((int(m.group(1)), m.group(2) and int(m.group(2)), m.group(3).strip()))
            elif s.startswith("#~"):
                stderr.append(s[2:].strip())
            elif s.startswith("# exit:"):
                exit_code = int(s.split(":", 1)[1])
    if exit_code is None:
        exit_code = 1 if diags else 0
    return diags, stderr, exit_code


def collect(paths, exclude):
    files = []
    for p in paths:
        if os.path.isdir(p):
            for root, _, names in os.walk(p):
                if os.path.basename(root) == "lib" or os.path.basename(root) in exclude:
                    continue
                files += [os.path.join(root, n) for n in names if n.endswith(".tdl")]
        elif p.endswith(".tdl"):
            files.append(p)
    return sorted(files)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tdl", required=True)
    ap.add_argument("--mode", choices=["check", "check-valid"], required=True)
    ap.add_argument("--exclude", action="append", default=[], help="skip folders with this name")
    ap.add_argument("paths", nargs="+")
    a = ap.parse_args()
    passed = failed = 0
    a.tdl = os.path.abspath(a.tdl)
    for f in collect(a.paths, a.exclude):
        r = subprocess.run([a.tdl, "check", os.path.basename(f)], capture_output=True, text=True, errors="replace", timeout=60,
                           cwd=os.path.dirname(os.path.abspath(f)))
        problems = []
        if a.mode == "check-valid":
            if r.returncode != 0 or r.stderr.strip() or r.stdout.strip():
                problems.append(f"exit {r.returncode}: {r.stderr.strip()[:500]}")
        else:
            diags, errs, code = parse_spec(f)
            if not diags and not errs:
                problems.append("no #! or #~ lines: a must-fail test must say what it expects")
            if r.returncode != code:
                problems.append(f"exit status {r.returncode}, expected {code}")
            name = os.path.basename(f)
            for line, col, text in diags:
                pat = re.escape(name) + rf":{line}:" + (rf"{col}:" if col else r"\d+:") + r" error: .*" + re.escape(text)
                if not re.search(pat, r.stderr):
                    problems.append(f"no diagnostic {name}:{line}:{col or ''} ...{text}")
            for text in errs:
                if text not in r.stderr:
                    problems.append(f"stderr lacks {text!r}")
            for bad in ("Segmentation fault", "terminate called", "Aborted", "AddressSanitizer", "internal error"):
                if bad in r.stderr:
                    problems.append(f"crash: {bad}")
        if problems:
            failed += 1
            print(f"FAIL {f}: " + "; ".join(problems))
            if r.stderr:
                print("  stderr: " + r.stderr.strip().replace("\n", "\n          ")[:2000])
        else:
            passed += 1
            print(f"ok   {f}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed or passed == 0 else 0)


if __name__ == "__main__":
    main()
