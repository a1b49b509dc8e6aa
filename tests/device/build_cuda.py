#!/usr/bin/env python3
"""`tdl build --device cuda` (issue 22): the executable embeds each graph fn's PTX (and a
cubin where ptxas is installed), runs on a GPU when there is one and prints what the CPU
build prints otherwise; TDL_DEVICE=cuda without a GPU, or on a build without kernels, is a
clear error (exit 1); TDL_DEVICE=cpu and a bad TDL_DEVICE too."""
import argparse
import ctypes
import os
import subprocess
import sys
import tempfile


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tdl", required=True)
    ap.add_argument("script")
    a = ap.parse_args()
    bad = []
    try:
        ctypes.CDLL("libcuda.so.1")
        gpu = True
    except OSError:
        gpu = False
    with tempfile.TemporaryDirectory() as d:
        cuda_exe, cpu_exe = os.path.join(d, "cuda"), os.path.join(d, "cpu")
        for exe, extra in ((cuda_exe, ["--device", "cuda"]), (cpu_exe, [])):
            r = subprocess.run([a.tdl, "build", a.script, "-o", exe] + extra, capture_output=True, text=True)
            if r.returncode != 0:
                print(f"FAIL tdl build {' '.join(extra)}: {r.stderr}")
                return 1
        data = open(cuda_exe, "rb").read()
        if data.count(b".entry ") == 0 or b".version" not in data:
            bad.append("no PTX in the --device cuda executable")
        if b".entry " in open(cpu_exe, "rb").read():
            bad.append("PTX in the CPU executable")
        run = lambda exe, dev: subprocess.run([exe], capture_output=True, text=True,
                                              env=dict(os.environ, **({"TDL_DEVICE": dev} if dev else {})))
        cpu = run(cpu_exe, None)
        for dev in (None, "auto", "cpu") + (("cuda",) if gpu else ()):
            r = run(cuda_exe, dev)
            if (r.returncode, r.stdout) != (cpu.returncode, cpu.stdout):
                bad.append(f"TDL_DEVICE={dev}: exit {r.returncode}, {r.stdout!r} {r.stderr!r}; CPU build: {cpu.stdout!r}")
        checks = [(cpu_exe, "cuda", "TDL_DEVICE=cuda: this program was built without GPU kernels")]
        if not gpu:
            checks.append((cuda_exe, "cuda", "TDL_DEVICE=cuda: no CUDA driver (libcuda.so.1"))
        checks.append((cuda_exe, "tpu", "TDL_DEVICE must be cpu, cuda or auto, not 'tpu'"))
        for exe, dev, want in checks:
            r = run(exe, dev)
            if r.returncode != 1 or want not in r.stderr or r.stdout:
                bad.append(f"TDL_DEVICE={dev} {os.path.basename(exe)}: exit {r.returncode}, {r.stderr!r}; want {want!r}")
    for b in bad:
        print("FAIL " + b)
    print(f"build --device cuda ({'with' if gpu else 'without'} libcuda.so.1): {len(bad)} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
