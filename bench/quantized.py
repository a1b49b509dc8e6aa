#!/usr/bin/env python3
"""Edge benchmark (issue 24), on this machine:
  - int8 against f32 inference of the edge walkthrough's digits models (examples/edge: the
    MLP 64-512-512-10 and the CNN), exported with `tdl export` and `--quantize int8`, called
    through load_model at batch 1 and 64 (best of 7 rounds of 300 calls, f32 and int8
    alternating in one process);
  - the model files' sizes and held-out accuracy;
  - the deployed executable (`tdl build` of examples/edge/predict.tdl) for this machine and
    for aarch64 (cortex-a72), and the deployment without a VM (the cross-built
    libtdl_model.so and a C program on it): sizes, stripped and not.

    python3 bench/quantized.py --tdl build/tdl [--out bench/QUANTIZED.md]
"""
import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EDGE = os.path.join(ROOT, "examples", "edge")
DATA = os.path.join(ROOT, "examples", "data", "digits.csv.gz")
ENV = dict(os.environ, TDL_CACHE_DIR="off")

TIMING = """\
let dir = args()[0]
let x = load_npy(dir + "/test_x.npy")
let y = load_npy(dir + "/test_y.npy")
let f = load_model(args()[1])
let q = load_model(args()[2])
let models = [f, q]
let names = ["f32", "int8"]
for k in range(2) {
    let p = argmax(models[k].logits(x), axis=1)
    print(f"ACC {names[k]} {mean(cast(p == y, f32)) * 100.0}")
}
for b in [1, 64] {
    let xb = x[0:b]
    var best = [1e9, 1e9]
    for round in range(7) {
        for k in range(2) {
            let m = models[k]
            let t0 = time()
            for i in range(300) { let r = m.logits(xb) }
            let t = (time() - t0) / 300.0
            if t < best[k] { best[k] = t }
        }
    }
    print(f"TIME {b} {best[0]} {best[1]}")
}
"""


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=900, **kw)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}{r.stderr}")
    return r


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tdl", required=True)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "QUANTIZED.md"))
    a = ap.parse_args()
    tdl = os.path.abspath(a.tdl)
    rows, sizes = [], []
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "timing.tdl")
        with open(script, "w") as f:
            f.write(TIMING)
        for model in ("mlp", "cnn"):
            weights = os.path.join(tmp, f"{model}.safetensors")
            run([tdl, "run", os.path.join(EDGE, "train.tdl"), model, DATA, weights])
            exp = [tdl, "export", os.path.join(EDGE, "export.tdl"), "--fn", "logits", "--args", model, DATA, weights, tmp]
            f32, i8 = os.path.join(tmp, f"{model}.tdlm"), os.path.join(tmp, f"{model}-int8.tdlm")
            run(exp + ["-o", f32])
            run(exp + ["-o", i8, "--quantize", "int8", "--calibrate", os.path.join(tmp, "calib.npy")])
            out = run([tdl, "run", script, tmp, f32, i8]).stdout
            acc = dict(re.findall(r"ACC (\S+) (\S+)", out))
            times = {int(b): (float(t32), float(t8)) for b, t32, t8 in re.findall(r"TIME (\d+) (\S+) (\S+)", out)}
            for b, (t32, t8) in sorted(times.items()):
                rows.append((model, b, t32 * 1e6, t8 * 1e6, t32 / t8))
            sizes.append((model, os.path.getsize(f32), os.path.getsize(i8), float(acc["f32"]), float(acc["int8"])))
            # The same model for the board, f32 and int8, for the minimal runtimes below.
            arm = ["--target", "aarch64-linux-gnu", "--target-cpu", "cortex-a72"]
            run(exp + ["-o", os.path.join(tmp, f"{model}-arm.tdlm")] + arm)
            run(exp + ["-o", os.path.join(tmp, f"{model}-int8-arm.tdlm"), "--quantize", "int8", "--calibrate",
                       os.path.join(tmp, "calib.npy")] + arm)
        for target, extra in (("x86-64 (this machine)", []),
                              ("aarch64, cortex-a72", ["--target", "aarch64-linux-gnu", "--target-cpu", "cortex-a72"])):
            exe = os.path.join(tmp, "predict")
            run([tdl, "build"] + extra + [os.path.join(EDGE, "predict.tdl"), "-o", exe])
            strip = "aarch64-linux-gnu-strip" if extra else "strip"
            run([strip, "-o", exe + ".s", exe])
            sizes.append((target, os.path.getsize(exe), os.path.getsize(exe + ".s"), None, None))
        # The deployment without a VM: a C program on the cross-built libtdl_model.so.
        armlib = os.path.join(os.path.dirname(tdl), "cross", "aarch64-linux-gnu", "libtdl_model.so")
        pm = os.path.join(tmp, "predict_model")
        run(["aarch64-linux-gnu-gcc", "-O2", "-o", pm, os.path.join(EDGE, "predict_model.c"),
             "-I", os.path.join(ROOT, "tools", "capi"), "-L", os.path.dirname(armlib), "-ltdl_model"])
        run(["aarch64-linux-gnu-strip", "-o", pm + ".s", pm])
        run(["aarch64-linux-gnu-strip", "-o", os.path.join(tmp, "lib.s"), armlib])
        model_rt = (os.path.getsize(armlib), os.path.getsize(os.path.join(tmp, "lib.s")),
                    os.path.getsize(pm), os.path.getsize(pm + ".s"))
        # Minimal runtimes (`tdl runtime`): only the kernels of the given models (already stripped).
        minimal = []
        for what, names in (("the int8 MLP", ["mlp-int8"]), ("the f32 MLP", ["mlp"]), ("the int8 CNN", ["cnn-int8"]),
                            ("all four (MLP, CNN; f32, int8)", ["mlp", "mlp-int8", "cnn", "cnn-int8"])):
            lib = os.path.join(tmp, "minimal.so")
            r = run([tdl, "runtime"] + [os.path.join(tmp, n + "-arm.tdlm") for n in names] + ["-o", lib])
            kernels = re.search(r"\((.*)\)\s*$", r.stdout.strip())
            minimal.append((what, os.path.getsize(lib), kernels.group(1) if kernels else ""))
    lines = [
        "# Edge benchmark: int8 against f32, and the deployed executable",
        "",
        f"Measured {datetime.date.today()} on {cpu_name()}, {os.cpu_count()} cores, by `python3 bench/quantized.py "
        f"--tdl build/tdl` (OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}). Models: "
        "examples/edge (MLP 64-512-512-10, CNN conv 3x3x16, conv 3x3x32, dense 128-10), trained on the digits, exported "
        "with `tdl export` (f32) and `--quantize int8 --calibrate` (256 training images); called through "
        "`load_model(...).logits(x)`, best of 7 rounds of 300 calls, f32 and int8 alternating in one process.",
        "",
        "| model | batch | f32 µs/call | int8 µs/call | int8 speedup |",
        "|---|---|---|---|---|",
    ]
    for model, b, t32, t8, sp in rows:
        lines.append(f"| {model} | {b} | {t32:.1f} | {t8:.1f} | {sp:.2f}x |")
    lines += ["", "| model | f32 file | int8 file | int8 / f32 | held-out accuracy f32 | int8 |", "|---|---|---|---|---|---|"]
    for model, s32, s8, a32, a8 in sizes:
        if a32 is not None:
            lines.append(f"| {model} | {s32 / 1024:.1f} KiB | {s8 / 1024:.1f} KiB | {100 * s8 / s32:.1f}% | {a32:.2f}% | {a8:.2f}% |")
    lines += ["", "| deployed executable (examples/edge/predict.tdl) | size | stripped |", "|---|---|---|"]
    for target, full, stripped, _, _ in sizes:
        if _ is None and full and stripped and target.startswith(("x86", "aarch64")):
            lines.append(f"| {target} | {full / 1024:.0f} KiB | {stripped / 1024:.0f} KiB |")
    lines += [f"| aarch64: libtdl_model.so (model files of `tdl export --target`; no VM, no LLVM) | "
              f"{model_rt[0] / 1024:.0f} KiB | {model_rt[1] / 1024:.0f} KiB |",
              f"| aarch64: examples/edge/predict_model.c on it | {model_rt[2] / 1024:.0f} KiB | {model_rt[3] / 1024:.0f} KiB |"]
    lines += ["", "Minimal runtimes for aarch64 (`tdl runtime M.tdlm... -o libtdl_model.so`, docs/edge.md): the same C API "
              "and loader, with only the kernels of the given models (stripped; the full library above: "
              f"{model_rt[1] / 1024:.0f} KiB).", "", "| models | size | of the full library | kernels |", "|---|---|---|---|"]
    for what, size, kernels in minimal:
        lines.append(f"| {what} | {size / 1024:.0f} KiB | {100 * size / model_rt[1]:.0f}% | {kernels} |")
    lines += ["", "The executable holds the VM, graph mode (tracer, passes), the compiled code's ABI and the runtime; "
              "it depends dynamically on libc, libstdc++, libm, libgcc_s and OpenBLAS only (docs/edge.md)."]
    text = "\n".join(lines) + "\n"
    tmp_out = a.out + ".tmp"
    with open(tmp_out, "w") as f:
        f.write(text)
    os.replace(tmp_out, a.out)
    print(text)


if __name__ == "__main__":
    main()
