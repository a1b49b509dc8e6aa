#!/usr/bin/env python3
"""`tdl export --quantize int8 --calibrate DATA` as a user runs it (issue 24): the edge
walkthrough's digits MLP and CNN (examples/edge) are trained, exported in f32 and in int8
(calibrated on 256 training images), and measured on the held-out images through
load_model: the int8 accuracy is within 1 point of f32, the MLP's file is at most 30% of
the f32 file, its weights are i8, the export reports the comparison; the int8 results are
bit-identical across the qgemm kernels (AVX-512 VNNI, AVX2, portable) and between the
object code and the IR compiled again on load; bad options are clear errors.

Usage: quantize_check.py --tdl build/tdl
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

FAILS = []
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EDGE = os.path.join(ROOT, "examples", "edge")
DATA = os.path.join(ROOT, "examples", "data", "digits.csv.gz")


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)


def run(cmd, env=None, **kw):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=e, **kw)


LOGITS = """\
let m = load_model(args()[0])
save_npy(args()[2], m.logits(load_npy(args()[1])))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tdl", required=True)
    a = ap.parse_args()
    tdl = os.path.abspath(a.tdl)
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "logits.tdl")
        with open(script, "w") as f:
            f.write(LOGITS)
        for model in ("mlp", "cnn"):
            weights = os.path.join(tmp, f"{model}.safetensors")
            r = run([tdl, "run", os.path.join(EDGE, "train.tdl"), model, DATA, weights])
            check(r.returncode == 0, f"{model}: trained ({r.stdout.strip()}{r.stderr.strip()})")
            f32 = os.path.join(tmp, f"{model}.tdlm")
            i8 = os.path.join(tmp, f"{model}-int8.tdlm")
            exp = [os.path.join(EDGE, "export.tdl"), "--fn", "logits", "--args", model, DATA, weights, tmp]
            r = run([tdl, "export"] + exp + ["-o", f32])
            check(r.returncode == 0, f"{model}: exported in f32 ({r.stderr.strip()})")
            calib = os.path.join(tmp, "calib.npy")
            r = run([tdl, "export"] + exp + ["-o", i8, "--quantize", "int8", "--calibrate", calib])
            want = 3  # the MLP's three dense layers; the CNN's two convolutions and its dense layer
            check(r.returncode == 0 and f"logits: {want} of its matrix products with constant weights in int8" in r.stderr
                  and "top-1 agreement" in r.stderr, f"{model}: exported in int8, with the report:\n{r.stderr.strip()}")
            if r.returncode != 0:
                continue
            y = np.load(os.path.join(tmp, "test_y.npy"))
            x = os.path.join(tmp, "test_x.npy")
            acc = {}
            for name, path in (("f32", f32), ("int8", i8)):
                out = os.path.join(tmp, f"{model}-{name}.npy")
                r = run([tdl, "run", script, path, x, out])
                check(r.returncode == 0, f"{model} {name}: load_model and logits ({r.stderr.strip()})")
                acc[name] = float(np.mean(np.argmax(np.load(out), 1) == y)) * 100 if r.returncode == 0 else -100
            check(abs(acc["int8"] - acc["f32"]) <= 1.0 and acc["f32"] > 90,
                  f"{model}: held-out accuracy int8 {acc['int8']:.2f}% within 1 point of f32 {acc['f32']:.2f}%")
            ratio = os.path.getsize(i8) / os.path.getsize(f32)
            if model == "mlp":
                check(ratio <= 0.30, f"mlp: the int8 file is {ratio * 100:.1f}% of the f32 file (at most 30%)")
            r = run([tdl, "inspect", "--json", i8])
            info = json.loads(r.stdout) if r.returncode == 0 else {}
            dts = sorted(w["dtype"] for w in info.get("weights", []))
            check(dts.count("i8") == want, f"{model}: {want} weights stored as i8 ({dts})")
            # The same integers on every kernel and from the IR compiled again.
            base = np.load(os.path.join(tmp, f"{model}-int8.npy"))
            for label, env in (("portable kernel", {"TDL_QGEMM_KERNEL": "generic"}),
                               ("AVX2 kernel", {"TDL_QGEMM_KERNEL": "avx2"}),
                               ("IR compiled on load", {"TDL_MODEL_RECOMPILE": "1"})):
                out = os.path.join(tmp, f"{model}-alt.npy")
                r = run([tdl, "run", script, i8, x, out], env=env)
                same = r.returncode == 0 and np.array_equal(np.load(out), base)
                check(same, f"{model}: int8 logits bit-identical with the {label}")

        # Bad options.
        mlp = [os.path.join(EDGE, "export.tdl"), "--fn", "logits", "--args", "mlp", DATA,
               os.path.join(tmp, "mlp.safetensors"), tmp, "-o", os.path.join(tmp, "bad.tdlm")]
        r = run([tdl, "export"] + mlp + ["--quantize", "int8"])
        check(r.returncode == 2 and "--quantize int8 needs --calibrate DATA" in r.stderr, "--quantize without --calibrate")
        r = run([tdl, "export"] + mlp + ["--calibrate", os.path.join(tmp, "calib.npy")])
        check(r.returncode == 2 and "--calibrate is for --quantize int8" in r.stderr, "--calibrate without --quantize")
        r = run([tdl, "export"] + mlp + ["--quantize", "int4", "--calibrate", os.path.join(tmp, "calib.npy")])
        check(r.returncode != 0 and "int4" in r.stderr, "--quantize int4 is refused")
        r = run([tdl, "export"] + mlp + ["--quantize", "int8", "--calibrate", os.path.join(tmp, "missing.npy")])
        check(r.returncode == 1 and "missing.npy" in r.stderr and "Traceback" not in r.stderr,
              f"a missing calibration file ({r.stderr.strip()[-160:]})")
        np.save(os.path.join(tmp, "narrow.npy"), np.zeros((4, 3), np.float32))
        r = run([tdl, "export"] + mlp + ["--quantize", "int8", "--calibrate", os.path.join(tmp, "narrow.npy")])
        check(r.returncode == 1 and "f32[B, 64]" in r.stderr,
              f"calibration data of the wrong shape ({r.stderr.strip()[-200:]})")
        nan = np.zeros((4, 64), np.float32)
        nan[2, 5] = np.nan
        np.save(os.path.join(tmp, "nan.npy"), nan)
        r = run([tdl, "export"] + mlp + ["--quantize", "int8", "--calibrate", os.path.join(tmp, "nan.npy")])
        check(r.returncode == 1 and "holds NaN (at flat index 133)" in r.stderr,
              f"calibration data with a NaN ({r.stderr.strip()[-200:]})")
        with open(os.path.join(tmp, "calib.txt"), "w") as f:
            f.write("1 2 3\n")
        r = run([tdl, "export"] + mlp + ["--quantize", "int8", "--calibrate", os.path.join(tmp, "calib.txt")])
        check(r.returncode == 1 and "expected an .npy or .safetensors file" in r.stderr, "a calibration file of another kind")
        check(not os.path.exists(os.path.join(tmp, "bad.tdlm")), "no model file after an error")

    print(f"{len(FAILS)} failure(s)")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
