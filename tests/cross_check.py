#!/usr/bin/env python3
"""`tdl build --target aarch64-linux-gnu` as a user runs it (issue 24): the digits MLP and
CNN are trained here (x86), their inference program is cross-built for 64-bit ARM and run
under `qemu-aarch64 -cpu cortex-a72` (so code that uses features a Cortex-A72 lacks fails
here, not on the board); the ARM executable's logits agree with x86's within 1e-5, its
predictions are identical, its graph fns run the code compiled ahead of time (not the VM),
and a C program calling a cross-built `--lib` library prints what it prints on x86. Model
files exported for ARM (`tdl export --target`, f32 and int8) run through the cross-built
libtdl_model.so (no VM, no LLVM) with the same predictions as on x86 (f32 within 1e-5, int8
bit-identical); a model for a CPU the board lacks is refused. Bad targets and CPUs are clear
errors.

Usage: cross_check.py --tdl build/tdl
Needs g++-aarch64-linux-gnu, qemu-user and the arm64 libraries (scripts/install-deps.sh).
"""
import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

FAILS = []
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = "aarch64-linux-gnu"
SYSROOT = "/usr/aarch64-linux-gnu"


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)


def run(cmd, **kw):
    kw.setdefault("timeout", 600)
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def elf_machine(path):
    with open(path, "rb") as f:
        head = f.read(20)
    if head[:4] != b"\x7fELF":
        return None
    return struct.unpack("<H", head[18:20])[0]


def qemu(args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return run(["qemu-aarch64", "-cpu", "cortex-a72"] + args, env=e)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tdl", required=True)
    a = ap.parse_args()
    tdl = os.path.abspath(a.tdl)
    for tool in ("qemu-aarch64", "aarch64-linux-gnu-gcc"):
        if not shutil.which(tool):
            print(f"FAIL {tool} is not installed (scripts/install-deps.sh installs it)")
            return 1
    data = os.path.join(ROOT, "examples", "data", "digits.csv.gz")
    edge = os.path.join(ROOT, "examples", "edge")
    with tempfile.TemporaryDirectory() as tmp:
        # The ARM inference program; the same program for this machine.
        arm = os.path.join(tmp, "predict-arm64")
        r = run([tdl, "build", "--target", TARGET, "--target-cpu", "cortex-a72", os.path.join(edge, "predict.tdl"),
                 "-o", arm])
        check(r.returncode == 0 and r.stderr == "", f"tdl build --target {TARGET} --target-cpu cortex-a72 ({r.stderr.strip()})")
        if r.returncode != 0:
            return 1
        check(elf_machine(arm) == 183, "the executable is an AArch64 ELF file")
        x86 = os.path.join(tmp, "predict-x86")
        r = run([tdl, "build", os.path.join(edge, "predict.tdl"), "-o", x86])
        check(r.returncode == 0, "the same program built for this machine")
        # Generic ARMv8-A code also builds (the default CPU of a cross target).
        r = run([tdl, "build", "--target", "aarch64-unknown-linux-gnu", os.path.join(edge, "predict.tdl"),
                 "-o", os.path.join(tmp, "predict-generic")])
        check(r.returncode == 0 and elf_machine(os.path.join(tmp, "predict-generic")) == 183,
              "--target aarch64-unknown-linux-gnu, default CPU generic")

        for model in ("mlp", "cnn"):
            weights = os.path.join(tmp, f"{model}.safetensors")
            r = run([tdl, "run", os.path.join(edge, "train.tdl"), model, data, weights], cwd=ROOT)
            check(r.returncode == 0 and os.path.exists(weights), f"{model}: trained on x86 ({r.stdout.strip()}{r.stderr.strip()})")
            ref = run([tdl, "run", os.path.join(edge, "predict.tdl"), model, data, weights, os.path.join(tmp, f"{model}-run.npy")])
            nat = run([x86, model, data, weights, os.path.join(tmp, f"{model}-x86.npy")])
            out = qemu([arm, model, data, weights, os.path.join(tmp, f"{model}-arm.npy")], {"TDL_TRACE_REPORT": "1"})
            check(out.returncode == 0, f"{model}: the ARM executable runs under qemu-aarch64 -cpu cortex-a72 "
                                       f"(exit {out.returncode}: {out.stderr.strip()[-300:]})")
            check(ref.returncode == 0 and nat.stdout == ref.stdout, f"{model}: the x86 executable prints what tdl run prints")
            check(out.stdout == ref.stdout, f"{model}: the ARM executable prints what tdl run prints:\n{out.stdout}")
            fn = f"{model}_logits"
            check(fn in out.stderr and "served in the VM" not in out.stderr,
                  f"{model}: on ARM, {fn} runs the code compiled ahead of time (trace report)")
            try:
                la = np.load(os.path.join(tmp, f"{model}-arm.npy"))
                lx = np.load(os.path.join(tmp, f"{model}-x86.npy"))
                lr = np.load(os.path.join(tmp, f"{model}-run.npy"))
            except OSError as e:
                check(False, f"{model}: logits written ({e})")
                continue
            err = float(np.max(np.abs(la - lx) / np.maximum(1.0, np.abs(lx))))
            check(la.shape == lx.shape and err <= 1e-5, f"{model}: ARM logits within 1e-5 of x86's (max {err:.2e})")
            check(np.array_equal(np.argmax(la, 1), np.argmax(lx, 1)), f"{model}: identical predictions on ARM and x86")
            check(np.array_equal(lx, lr), f"{model}: the x86 executable's logits are tdl run's")

        # Model files exported for ARM (tdl export --target), f32 and int8, run by the C API
        # (examples/edge/predict_model.c) on the cross-built libtdl_model.so: no VM, no LLVM.
        bindir = os.path.dirname(tdl)
        armlib = os.path.join(bindir, "cross", TARGET)
        pm_c = os.path.join(edge, "predict_model.c")
        capi_inc = os.path.join(ROOT, "tools", "capi")
        pm_arm, pm_x86 = os.path.join(tmp, "pm-arm"), os.path.join(tmp, "pm-x86")
        r = run(["aarch64-linux-gnu-gcc", "-O2", pm_c, "-I", capi_inc, "-L", armlib, "-ltdl_model",
                 "-Wl,-rpath," + armlib, "-o", pm_arm])
        check(r.returncode == 0, f"predict_model.c cross-compiled against the ARM libtdl_model.so ({r.stderr.strip()})")
        r = run(["gcc", "-O2", pm_c, "-I", capi_inc, "-L", bindir, "-ltdl_model", "-Wl,-rpath," + bindir, "-o", pm_x86])
        check(r.returncode == 0, f"and for this machine ({r.stderr.strip()})")
        r = run(["aarch64-linux-gnu-readelf", "-dW", os.path.join(armlib, "libtdl_model.so")])
        check(r.returncode == 0 and "LLVM" not in r.stdout, "the ARM libtdl_model.so does not need LLVM")
        out_dir = os.path.join(tmp, "out")
        os.makedirs(out_dir, exist_ok=True)
        tx, ty = os.path.join(out_dir, "test_x.npy"), os.path.join(out_dir, "test_y.npy")
        for model in ("mlp", "cnn"):
            weights = os.path.join(tmp, f"{model}.safetensors")
            logits = {}
            for q in ("", "int8"):
                quant = ["--quantize", "int8", "--calibrate", os.path.join(out_dir, "calib.npy")] if q else []
                base = [tdl, "export", os.path.join(edge, "export.tdl"), "--fn", "logits"]
                args = ["--args", model, data, weights, out_dir]
                name = f"{model}{'-' + q if q else ''}"
                fx, fa = os.path.join(tmp, name + ".tdlm"), os.path.join(tmp, name + "-arm.tdlm")
                r1 = run(base + ["-o", fx] + quant + args)
                r2 = run(base + ["-o", fa, "--target", TARGET, "--target-cpu", "cortex-a72"] + quant + args)
                check(r1.returncode == 0 and r2.returncode == 0,
                      f"{name}: exported for x86 and for {TARGET} ({r1.stderr.strip()[-200:]}{r2.stderr.strip()[-200:]})")
                insp = run([tdl, "inspect", fa])
                check("for aarch64-unknown-linux-gnu (cortex-a72)" in insp.stdout, f"{name}: tdl inspect names the target")
                ox = run([pm_x86, fx, tx, ty, os.path.join(tmp, name + "-x86.npy")])
                oa = qemu([pm_arm, fa, tx, ty, os.path.join(tmp, name + "-arm.npy")])
                check(oa.returncode == 0 and "shared object for cortex-a72" in oa.stdout,
                      f"{name}: the ARM model runs its shared objects under qemu -cpu cortex-a72 "
                      f"({oa.stdout.strip()[:300]}{oa.stderr.strip()[-300:]})")
                check(ox.returncode == 0 and oa.stdout.split("\n")[2:] == ox.stdout.split("\n")[2:],
                      f"{name}: the same accuracy and predictions on ARM and x86:\n{oa.stdout}")
                # The x86 loader (LLVM) recompiles an ARM model from its IR.
                oxa = run([pm_x86, fa, tx, ty])
                check(oxa.returncode == 0 and "recompiled from its IR (it was compiled for aarch64" in oxa.stdout
                      and oxa.stdout.split("\n")[2:] == ox.stdout.split("\n")[2:],
                      f"{name}: the ARM model file also runs on x86, recompiled from its IR ({oxa.stdout.strip()[:200]})")
                try:
                    lx = np.load(os.path.join(tmp, name + "-x86.npy"))
                    la = np.load(os.path.join(tmp, name + "-arm.npy"))
                except OSError as e:
                    check(False, f"{name}: logits written ({e})")
                    continue
                logits[q] = (lx, la)
                if q:
                    # int8: the integer products are exact and the float steps around them are
                    # evaluated as written on both machines: the same bits.
                    check(np.array_equal(la, lx), f"{name}: int8 logits on ARM identical to x86's")
                else:
                    err = float(np.max(np.abs(la - lx) / np.maximum(1.0, np.abs(lx))))
                    check(la.shape == lx.shape and err <= 1e-5, f"{name}: ARM logits within 1e-5 of x86's (max {err:.2e})")
                check(np.array_equal(np.argmax(la, 1), np.argmax(lx, 1)), f"{name}: identical predictions on ARM and x86")
            if len(logits) == 2:
                y = np.load(ty)
                acc = [float(np.mean(np.argmax(logits[q][1], 1) == y)) for q in ("", "int8")]
                check(abs(acc[0] - acc[1]) <= 0.01, f"{model}: int8 accuracy on ARM within 1 point of f32 ({acc[1]:.4f} vs {acc[0]:.4f})")

        # A minimal runtime for the four ARM models (`tdl runtime`, TF Lite's selective build):
        # only their kernels, the same logits bit for bit as the full library's, and smaller.
        names = ("mlp", "mlp-int8", "cnn", "cnn-int8")
        mini = os.path.join(tmp, "mini")
        os.makedirs(mini, exist_ok=True)
        r = run([tdl, "runtime"] + [os.path.join(tmp, n + "-arm.tdlm") for n in names] + ["-o", os.path.join(mini, "libtdl_model.so")])
        check(r.returncode == 0 and "aarch64" in r.stdout and "qgemm" in r.stdout,
              f"tdl runtime for the ARM models ({r.stdout.strip()}{r.stderr.strip()})")
        pm_mini = os.path.join(tmp, "pm-mini")
        r = run(["aarch64-linux-gnu-gcc", "-O2", pm_c, "-I", capi_inc, "-L", mini, "-ltdl_model", "-Wl,-rpath," + mini,
                 "-o", pm_mini])
        check(r.returncode == 0, f"predict_model.c cross-compiled against the minimal runtime ({r.stderr.strip()})")
        for n in names:
            o = qemu([pm_mini, os.path.join(tmp, n + "-arm.tdlm"), tx, ty, os.path.join(tmp, n + "-mini.npy")])
            try:
                same = np.array_equal(np.load(os.path.join(tmp, n + "-mini.npy")), np.load(os.path.join(tmp, n + "-arm.npy")))
            except OSError:
                same = False
            check(o.returncode == 0 and same, f"{n}: the minimal ARM runtime gives the full library's logits, bit for bit "
                                              f"({o.stderr.strip()[-200:]})")
        full_stripped = os.path.join(tmp, "full-arm.so")
        shutil.copy(os.path.join(armlib, "libtdl_model.so"), full_stripped)
        run(["aarch64-linux-gnu-strip", full_stripped])
        full, small = os.path.getsize(full_stripped), os.path.getsize(os.path.join(mini, "libtdl_model.so"))
        check(small < 0.7 * full, f"the minimal ARM runtime is {small // 1024} KiB, the full one {full // 1024} KiB (stripped)")

        # A model for a CPU with features the board lacks is refused with a clear error (the
        # loader checks the kernel's hardware capabilities), and loads where they exist.
        sve_model = os.path.join(tmp, "mlp-a64fx.tdlm")
        r = run([tdl, "export", os.path.join(edge, "export.tdl"), "--fn", "logits", "-o", sve_model, "--target", TARGET,
                 "--target-cpu", "a64fx", "--args", "mlp", data, os.path.join(tmp, "mlp.safetensors"), out_dir])
        check(r.returncode == 0, "export --target-cpu a64fx")
        bad = qemu([pm_arm, sve_model, tx, ty])
        check(bad.returncode == 1 and "this CPU lacks" in bad.stderr and "sve" in bad.stderr
              and "cannot recompile" in bad.stderr, f"an SVE model under -cpu cortex-a72: a clear error ({bad.stderr.strip()})")
        good = run(["qemu-aarch64", "-cpu", "max", pm_arm, sve_model, tx, ty])
        check(good.returncode == 0 and "shared object for a64fx" in good.stdout, "and it runs under -cpu max")
        # An x86 model on the ARM loader: a clear error, not a crash.
        bad = qemu([pm_arm, os.path.join(tmp, "mlp.tdlm"), tx, ty])
        check(bad.returncode == 1 and "compiled for x86_64" in bad.stderr and "--target" in bad.stderr,
              f"an x86 model on the ARM loader: a clear error ({bad.stderr.strip()})")
        r = run([tdl, "export", os.path.join(edge, "export.tdl"), "--fn", "logits", "-o", os.path.join(tmp, "bad.tdlm"),
                 "--target", "riscv64-linux-gnu", "--args", "mlp", data, os.path.join(tmp, "mlp.safetensors"), out_dir])
        check(r.returncode == 1 and "unknown --target 'riscv64-linux-gnu'" in r.stderr
              and not os.path.exists(os.path.join(tmp, "bad.tdlm")), f"export to an unknown target: an error ({r.stderr.strip()})")

        # Code for a CPU with features the Cortex-A72 lacks (A64FX: SVE) fails under
        # -cpu cortex-a72, as it would on the board, and runs where they exist (-cpu max).
        sve = os.path.join(tmp, "predict-sve")
        r = run([tdl, "build", "--target", TARGET, "--target-cpu", "a64fx", os.path.join(edge, "predict.tdl"), "-o", sve])
        check(r.returncode == 0, "--target-cpu a64fx (SVE)")
        weights = os.path.join(tmp, "mlp.safetensors")
        args = [sve, "mlp", data, weights]
        bad = qemu(args)
        check(bad.returncode != 0 and "Illegal instruction" in bad.stderr,
              f"SVE code stops with an illegal instruction under -cpu cortex-a72 (exit {bad.returncode})")
        good = run(["qemu-aarch64", "-cpu", "max"] + args)
        ref = run([tdl, "run", os.path.join(edge, "predict.tdl"), "mlp", data, weights])
        check(good.returncode == 0 and good.stdout == ref.stdout, "and runs under -cpu max (which has SVE)")

        # A C program on a cross-built library (tdl build --lib).
        capi = os.path.join(ROOT, "examples", "c_api")
        lib = os.path.join(tmp, "libclassifier.so")
        r = run([tdl, "build", "--lib", "--target", TARGET, os.path.join(capi, "classifier.tdl"), "-o", lib])
        check(r.returncode == 0 and elf_machine(lib) == 183, f"--lib --target {TARGET} ({r.stderr.strip()})")
        main_c = os.path.join(tmp, "main")
        r = run(["aarch64-linux-gnu-gcc", "-O2", os.path.join(capi, "main.c"), "-I", tmp, "-L", tmp, "-lclassifier",
                 "-Wl,-rpath,$ORIGIN", "-o", main_c])
        check(r.returncode == 0, f"main.c cross-compiled against it ({r.stderr.strip()})")
        if r.returncode == 0:
            out = qemu([main_c])
            with open(os.path.join(capi, "expected.txt")) as f:
                check(out.returncode == 0 and out.stdout == f.read(), f"the C program on ARM prints expected.txt:\n{out.stdout}{out.stderr}")

        # Bad targets and CPUs.
        prog = os.path.join(tmp, "p.tdl")
        with open(prog, "w") as f:
            f.write("graph fn f(x: f32[3]) { return x * 2.0 }\nprint(f([1.0, 2.0, 3.0]))\n")
        r = run([tdl, "build", "--target", "sparc-sun-solaris", prog, "-o", os.path.join(tmp, "p")])
        check(r.returncode == 1 and "unknown --target 'sparc-sun-solaris'" in r.stderr and TARGET in r.stderr,
              f"an unknown target is an error that names the known ones ({r.stderr.strip()})")
        r = run([tdl, "build", "--target", TARGET, "--target-cpu", "znver4", prog, "-o", os.path.join(tmp, "p")])
        check(r.returncode == 1 and "unknown --target-cpu 'znver4' for aarch64-linux-gnu" in r.stderr
              and "cortex-a72" in r.stderr, f"an x86 CPU for an ARM target is an error that lists ARM CPUs ({r.stderr.strip()[:200]})")
        check(not os.path.exists(os.path.join(tmp, "p")), "no output after an error")
        r = run([tdl, "build", "--target", TARGET, "--emit-llvm", prog, "-o", os.path.join(tmp, "p.ll")])
        text = open(os.path.join(tmp, "p.ll")).read() if r.returncode == 0 else ""
        check('target triple = "aarch64' in text, "--emit-llvm --target shows AArch64 LLVM IR")

    print(f"{len(FAILS)} failure(s)")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
