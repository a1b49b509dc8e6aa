#!/usr/bin/env python3
"""PTX of every graph fn assembles (issue 8, checked without a GPU).

For each .tdl file of the given folders, runs `tdl run --trace-report FILE` to learn the
signature of every trace of every graph fn (the calls the script really makes), falling
back to the parameter annotations (`graph fn f(x: f32[N, 3], ...)`) when the script does
not run. For each signature: `tdl emit FILE --fn F --args SIG --stage ptx --gpu-arch ARCH`,
then `ptxas -arch=ARCH` on the text. Fails on any emit or ptxas error; a graph fn that
`tdl emit --args` cannot describe (a record, list, none or string parameter) is skipped and listed.
Prints `SKIP: ptxas not found` and exits 0 without ptxas.

With --device-check SCRIPT: checks what `tdl run --device cpu|auto|cuda SCRIPT` does here.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

TRACE_FN = re.compile(r"^graph fn (\S+): \d+ traces?$")
TRACE_SIG = re.compile(r"^\s+#\d+ \((.*)\): \d+ calls? served")
GRAPH_FN = re.compile(r"^\s*graph\s+fn\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(", re.M)


def find_ptxas(given=None):
    for p in ([given] if given else ["/usr/local/cuda/bin/ptxas", shutil.which("ptxas")]):
        if p and os.access(p, os.X_OK):
            return p
    return None


def split_top(s):
    """Splits at commas outside brackets."""
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch in "[({":
            depth += 1
        elif ch in "])}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def graph_fns_in_source(text):
    """(name, [param annotation or None]) for each top-level graph fn."""
    fns = []
    for m in GRAPH_FN.finditer(text):
        start = m.end()
        depth, i = 1, start
        while i < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        params = []
        for p in split_top(text[start:i - 1]):
            p = p.split("=")[0]
            params.append(p.split(":", 1)[1].strip() if ":" in p else None)
        fns.append((m.group(1), params))
    return fns


def traced_signatures(tdl, path, timeout):
    """{fn: [signature, ...]} from --trace-report, or None when the script fails."""
    try:
        r = subprocess.run([tdl, "run", "--trace-report", os.path.basename(path)], cwd=os.path.dirname(path) or ".",
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    sigs, cur = {}, None
    for line in r.stderr.splitlines():
        m = TRACE_FN.match(line)
        if m:
            cur = m.group(1)
            sigs.setdefault(cur, [])
            continue
        m = TRACE_SIG.match(line)
        if m and cur:
            sig = m.group(1).replace(" (weak)", "")
            # the report names each parameter (`x: f32[3]`); --args takes the types only
            sig = ", ".join(re.sub(r"^\s*[A-Za-z_][A-Za-z0-9_]*:\s*", "", part) for part in split_top(sig))
            if sig not in sigs[cur]:
                sigs[cur].append(sig)
    return sigs if r.returncode == 0 or sigs else None


def check_device(tdl, script):
    """`tdl run --device cuda|emu|auto` on this machine: for cuda, the CPU's output on a
    machine with a GPU, else exit 1 with the reason (no driver, no device); the CPU's output
    for emu and auto."""
    import ctypes
    try:
        ctypes.CDLL("libcuda.so.1")
        have_driver = True
    except OSError:
        have_driver = False
    cpu = subprocess.run([tdl, "run", "--device", "cpu", script], capture_output=True, text=True)
    auto = subprocess.run([tdl, "run", "--device", "auto", script], capture_output=True, text=True)
    cuda = subprocess.run([tdl, "run", "--device", "cuda", script], capture_output=True, text=True)
    emu = subprocess.run([tdl, "run", "--device", "emu", script], capture_output=True, text=True)
    bad = []
    if (emu.returncode, emu.stdout) != (cpu.returncode, cpu.stdout):
        bad.append(f"--device emu differs from cpu: exit {emu.returncode}: {emu.stdout}{emu.stderr}")
    if cpu.returncode != 0:
        bad.append(f"--device cpu: exit {cpu.returncode}: {cpu.stderr}")
    if (auto.returncode, auto.stdout) != (cpu.returncode, cpu.stdout):
        bad.append(f"--device auto differs from cpu: exit {auto.returncode}: {auto.stdout}{auto.stderr}")
    want = "tdl: error: --device cuda: " + ("" if have_driver else "no CUDA driver (libcuda.so.1")
    if have_driver and cuda.returncode == 0:
        if cuda.stdout != cpu.stdout:
            bad.append(f"--device cuda differs from cpu: {cuda.stdout}")
    elif cuda.returncode != 1 or not cuda.stderr.startswith(want) or cuda.stdout:
        bad.append(f"--device cuda: exit {cuda.returncode}, stderr {cuda.stderr!r}, want exit 1 and {want!r}")
    for b in bad:
        print("FAIL " + b)
    print(f"device check ({'with' if have_driver else 'without'} libcuda.so.1): {cuda.stderr.strip()}")
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tdl", required=True)
    ap.add_argument("--arch", default="sm_90")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--ptxas", help="the ptxas to use (default: /usr/local/cuda/bin/ptxas, then PATH)")
    ap.add_argument("--keep", help="write each PTX file into this folder")
    ap.add_argument("--device-check", metavar="SCRIPT", help="check `tdl run --device` on SCRIPT instead")
    ap.add_argument("dirs", nargs="*")
    args = ap.parse_args()
    args.tdl = os.path.abspath(args.tdl)
    if args.device_check:
        return check_device(args.tdl, args.device_check)
    ptxas = find_ptxas(args.ptxas)
    if not ptxas:
        print("SKIP: ptxas not found (/usr/local/cuda/bin/ptxas, PATH)")
        return 0
    files = []
    for d in args.dirs:
        if os.path.isfile(d):
            files.append(d)
        elif os.path.isdir(d):
            files += sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".tdl"))
        else:
            print(f"note: {d} is absent, not checked")
    tmp = args.keep or tempfile.mkdtemp(prefix="tdl_ptx_")
    os.makedirs(tmp, exist_ok=True)
    checked, failed, skipped, kernels = [], [], [], 0
    for path in files:
        with open(path, encoding="utf-8") as fh:
            src = fh.read()
        fns = graph_fns_in_source(src)
        if not fns:
            continue
        # A must-fail test (its error is the point): a `#!` diagnostic, or an exit status
        # stated with the error's text (`# exit: 1`, `#~ ...: error: ...`, an error inside a module).
        if re.search(r"^#! ", src, re.M) or re.search(r"^# exit: *[1-9]", src, re.M):
            skipped.append((os.path.basename(path), "a test that expects a diagnostic"))
            continue
        traced = traced_signatures(args.tdl, os.path.abspath(path), args.timeout) or {}
        for name, params in fns:
            label = f"{os.path.basename(path)}:{name}"
            sigs = traced.get(name, [])
            if not sigs:
                if params and all(params):
                    sigs = [", ".join(params)]
                elif not params:
                    sigs = [""]
                else:
                    skipped.append((label, "not called by the script, and not every parameter is annotated"))
                    continue
            for sig in sigs:
                what = f"{label}({sig})"
                if "<" in sig:  # a function argument (<grad function>, <fn ...>): not a type --args describes
                    skipped.append((what, "a function parameter (tdl emit --args takes tensors only)"))
                    continue
                use_annotations = False
                alias = any(not re.match(r"(bool|i32|i64|f32|f64)\b", p.strip()) for p in params if p) and not traced.get(name)
                if re.search(r"[{(]", sig) or alias:  # records, tuples, type aliases: as annotated
                    if not (params and all(params)):
                        skipped.append((what, "a record or tuple parameter without annotations (tdl emit --args takes tensors only)"))
                        continue
                    use_annotations = True  # emit without --args: the annotated signature
                cmd = [args.tdl, "emit", os.path.basename(path), "--stage", "ptx", "--gpu-arch", args.arch, "--fn", name]
                if sig and not use_annotations:
                    cmd += ["--args", sig]
                r = subprocess.run(cmd, cwd=os.path.dirname(os.path.abspath(path)), capture_output=True, text=True,
                                   timeout=args.timeout)
                if r.returncode != 0:
                    if re.search(r"takes \d+ arguments?, got \d+|bad --args entry", r.stderr):
                        skipped.append((what, "a record, list, none or string parameter (tdl emit --args takes tensors only)"))
                    else:
                        failed.append((what, "tdl emit: " + r.stderr.strip()))
                    continue
                out = os.path.join(tmp, f"{os.path.basename(path)[:-4]}.{name}.{len(checked) + len(failed)}.ptx")
                with open(out, "w", encoding="utf-8") as fh:
                    fh.write(r.stdout)
                a = subprocess.run([ptxas, f"-arch={args.arch}", "-o", os.devnull, out], capture_output=True, text=True)
                if a.returncode != 0:
                    failed.append((what, f"ptxas ({out}): " + (a.stderr or a.stdout).strip()))
                    continue
                n = len(re.findall(r"^\.visible \.entry ", r.stdout, re.M))
                host = next((l[len("// host: "):] for l in r.stdout.splitlines() if l.startswith("// host: ")), "")
                kernels += n
                checked.append(what)
                print(f"ok   {what}: {n} kernel(s){'; host: ' + host if host else ''}")
    for what, why in skipped:
        print(f"skip {what}: {why}")
    for what, why in failed:
        print(f"FAIL {what}: {why}")
    fns_ok = {w.split("(")[0] for w in checked}
    print(f"{len(fns_ok)} graph fns ({len(checked)} signatures, {kernels} kernels) assembled by ptxas "
          f"-arch={args.arch}; {len(skipped)} skipped, {len(failed)} failed")
    return 1 if failed or not checked else 0


if __name__ == "__main__":
    sys.exit(main())
