#!/usr/bin/env python3
"""`tdl runtime` (issue 24, docs/edge.md): a minimal libtdl_model.so that holds only the
kernels of given models, on this machine (the ARM one: tests/cross_check.py).

Exports the digits MLP and CNN with `--target x86_64-linux-gnu` (shared objects, for a
loader without LLVM), makes a minimal runtime for the MLP and one for both, and checks:
the C program (examples/edge/predict_model.c) linked against each runs its models with the
same logits, bit for bit, as against the full libtdl_model.so; each is smaller than the
full library (stripped); the MLP's runtime refuses the CNN at load time with a clear
error; the runtime links no LLVM; and bad input to `tdl runtime` gets clear errors."""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
failures = 0


def check(cond, what):
    global failures
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures += 1


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tdl", required=True)
    a = ap.parse_args()
    tdl = os.path.abspath(a.tdl)
    bindir = os.path.dirname(tdl)
    data = os.path.join(ROOT, "examples", "data", "digits.csv.gz")
    edge = os.path.join(ROOT, "examples", "edge")
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = os.path.join(tmp, "out")
        os.makedirs(out_dir)
        models = {}
        for m in ("mlp", "cnn"):
            w = os.path.join(tmp, m + ".safetensors")
            r = run([tdl, "run", os.path.join(edge, "train.tdl"), m, data, w], cwd=ROOT)
            check(r.returncode == 0, f"{m}: trained ({r.stderr.strip()[-200:]})")
            models[m] = os.path.join(tmp, m + ".tdlm")
            r = run([tdl, "export", os.path.join(edge, "export.tdl"), "--fn", "logits", "-o", models[m],
                     "--target", "x86_64-linux-gnu", "--args", m, data, w, out_dir])
            check(r.returncode == 0, f"{m}: exported with --target x86_64-linux-gnu ({r.stderr.strip()[-200:]})")
        obj_model = os.path.join(tmp, "mlp-obj.tdlm")
        r = run([tdl, "export", os.path.join(edge, "export.tdl"), "--fn", "logits", "-o", obj_model,
                 "--args", "mlp", data, os.path.join(tmp, "mlp.safetensors"), out_dir])
        check(r.returncode == 0, "mlp: exported without --target (relocatable objects)")
        if failures:
            return 1

        libs = {"full": bindir}
        for name, ms in (("mlp", ["mlp"]), ("both", ["mlp", "cnn"])):
            d = os.path.join(tmp, "rt-" + name)
            os.makedirs(d)
            r = run([tdl, "runtime"] + [models[m] for m in ms] + ["-o", os.path.join(d, "libtdl_model.so")])
            check(r.returncode == 0 and "wrote" in r.stdout and "matmul" in r.stdout,
                  f"tdl runtime {' '.join(ms)}: {r.stdout.strip()}{r.stderr.strip()}")
            libs[name] = d
        if failures:
            return 1
        check("im2col" in run([tdl, "runtime", models["cnn"], "-o", os.path.join(tmp, "x.so")]).stdout,
              "the CNN's runtime holds its im2col")

        # Sizes: the minimal runtimes against the full library, both stripped.
        full_stripped = os.path.join(tmp, "full-stripped.so")
        shutil.copy(os.path.join(bindir, "libtdl_model.so"), full_stripped)
        run(["strip", full_stripped])
        full = os.path.getsize(full_stripped)
        size = {n: os.path.getsize(os.path.join(libs[n], "libtdl_model.so")) for n in ("mlp", "both")}
        check(size["mlp"] < size["both"] < full,
              f"smaller than the full library: mlp {size['mlp'] // 1024} KiB, both {size['both'] // 1024} KiB, "
              f"full {full // 1024} KiB (stripped)")
        check(size["mlp"] < 0.6 * full, "the MLP's runtime is less than 60% of the full library")
        r = run(["readelf", "-dW", os.path.join(libs["mlp"], "libtdl_model.so")])
        check(r.returncode == 0 and "LLVM" not in r.stdout, "the minimal runtime does not need LLVM")
        r = run(["nm", "-D", "--defined-only", os.path.join(libs["mlp"], "libtdl_model.so")])
        exported = {l.split()[-1] for l in r.stdout.splitlines() if l.strip()}
        check({"tdl_model_load", "tdl_model_call", "tdl_op"} <= exported and not any(s.startswith("tdlk_") for s in exported),
              "it exports the C API and the runtime ABI, not its kernels")

        # The same program against each library: the same logits, bit for bit.
        tx, ty = os.path.join(out_dir, "test_x.npy"), os.path.join(out_dir, "test_y.npy")
        progs = {}
        for name, d in libs.items():
            exe = os.path.join(tmp, "pm-" + name)
            r = run(["gcc", "-O2", os.path.join(edge, "predict_model.c"), "-I", os.path.join(ROOT, "tools", "capi"),
                     "-L", d, "-ltdl_model", "-Wl,-rpath," + d, "-o", exe])
            check(r.returncode == 0, f"predict_model.c linked against the {name} library ({r.stderr.strip()})")
            progs[name] = exe
        for m, libnames in (("mlp", ["mlp", "both"]), ("cnn", ["both"])):
            ref = run([progs["full"], models[m], tx, ty, os.path.join(tmp, f"{m}-full.npy")])
            check(ref.returncode == 0 and "shared object for" in ref.stdout, f"{m}: runs on the full library ({ref.stderr.strip()})")
            for n in libnames:
                o = run([progs[n], models[m], tx, ty, os.path.join(tmp, f"{m}-{n}.npy")])
                check(o.returncode == 0 and o.stdout == ref.stdout,
                      f"{m}: the {n} runtime prints what the full library prints ({o.stdout.strip()[-120:]}{o.stderr.strip()})")
                try:
                    same = np.array_equal(np.load(os.path.join(tmp, f"{m}-{n}.npy")), np.load(os.path.join(tmp, f"{m}-full.npy")))
                except OSError:
                    same = False
                check(same, f"{m}: the {n} runtime's logits are the full library's, bit for bit")

        # Calls with the wrong count of inputs or no room for outputs: 1 and a message, before
        # any input is read.
        calls = os.path.join(tmp, "calls.c")
        with open(calls, "w") as f:
            f.write('#include <stdio.h>\n#include "tdl_model.h"\nint main(int argc, char** argv) {\n'
                    '  tdl_model* m = tdl_model_load(argv[1]); if (!m) return 2;\n'
                    '  float x[64] = {0}; int64_t xs[2] = {1, 64}; tdl_tensor in = {x, TDL_F32, 2, xs}, out;\n'
                    '  int a = tdl_model_call(m, "logits", &in, 2, &out, 1); printf("%d %s\\n", a, tdl_model_last_error());\n'
                    '  int b = tdl_model_call(m, "logits", &in, 1, NULL, 1); printf("%d %s\\n", b, tdl_model_last_error());\n'
                    '  return 0;\n}\n')
        exe = os.path.join(tmp, "calls")
        r = run(["gcc", "-O2", calls, "-I", os.path.join(ROOT, "tools", "capi"), "-L", bindir, "-ltdl_model",
                 "-Wl,-rpath," + bindir, "-o", exe])
        o = run([exe, models["mlp"]]) if r.returncode == 0 else r
        lines = o.stdout.splitlines()
        check(o.returncode == 0 and len(lines) == 2 and lines[0].startswith("1 ") and "takes 1 input" in lines[0]
              and lines[1].startswith("1 ") and "NULL" in lines[1],
              f"a wrong input count and NULL outputs are errors ({o.returncode} {o.stdout!r} {o.stderr[-200:]!r})")

        # A model that needs kernels the runtime left out: refused at load, naming the op.
        o = run([progs["mlp"], models["cnn"], tx, ty])
        check(o.returncode != 0 and "uses op '" in o.stderr and "left out" in o.stderr and "mlp.tdlm" in o.stderr
              and "tdl runtime" in o.stderr, f"the MLP's runtime refuses the CNN ({o.stderr.strip()})")

        # Bad input.
        r = run([tdl, "runtime", obj_model, "-o", os.path.join(tmp, "bad.so")])
        check(r.returncode == 1 and "--target" in r.stderr and not os.path.exists(os.path.join(tmp, "bad.so")),
              f"a model of relocatable objects: an error naming --target ({r.stderr.strip()})")
        r = run([tdl, "runtime", os.path.join(tmp, "missing.tdlm"), "-o", os.path.join(tmp, "bad.so")])
        check(r.returncode == 1 and "missing.tdlm" in r.stderr and "Traceback" not in r.stderr,
              f"a missing model file: an error ({r.stderr.strip()})")
        junk = os.path.join(tmp, "junk.tdlm")
        with open(junk, "wb") as f:
            f.write(b"not a model")
        r = run([tdl, "runtime", junk, "-o", os.path.join(tmp, "bad.so")])
        check(r.returncode == 1 and "junk.tdlm" in r.stderr, f"a file that is not a model: an error ({r.stderr.strip()})")
        r = run([tdl, "runtime", models["mlp"], "-o", os.path.join(tmp, "nodir", "lib.so")])
        check(r.returncode == 1 and "does not exist" in r.stderr, f"an output in a missing folder: an error ({r.stderr.strip()})")
        r = run([tdl, "runtime", models["mlp"], "-o", models["mlp"]])
        check(r.returncode == 1 and os.path.getsize(models["mlp"]) > 1000, f"the output is the model: an error ({r.stderr.strip()})")
        r = run([tdl, "runtime", "-o", os.path.join(tmp, "bad.so")])
        check(r.returncode != 0 and not os.path.exists(os.path.join(tmp, "bad.so")), "no model: a usage error")
    print("FAIL" if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
