#!/usr/bin/env python3
"""GPU benchmarks (issue 22), as ratios to the GPU's own limits measured in the same run.

  bench/gpu.py --tdl build/tdl [--device cuda|emu] [--out bench/GPU.md]

  - fused elementwise chain relu(x * 1.5 + 0.25) * 0.5 + 2.0 on N f32 (default 2^26) in a
    graph fn, its input on the device: bytes read and written per second, against
    cuMemcpyDtoD of the same N f32 (bench/gpu/peer.c) -- need >= 0.70x;
  - M x M f32 matmul (default 4096) in a graph fn, operands on the device, against
    cublasSgemm alone -- need >= 0.80x;
  - the MLP training step (bench/workloads/mlp_step_graph) on the device, against PyTorch
    on the same GPU when PyTorch with CUDA is installed there, and against tdl on the CPU.

Each tdl figure is the median over 5 timed rounds of `reps` calls, ended by reading back a
scalar (which waits for the device). With `--device emu` the figures mean nothing (the
emulated device is slow by design): it checks the plumbing on a machine without a GPU.
Prints a Markdown table (and writes it to --out).
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CHAIN = """
graph fn chain(x: f32[?]) {
    return relu(x * 1.5 + 0.25) * 0.5 + 2.0
}
graph fn total(x: f32[?]) {
    return sum(x)
}
let n = int(args()[0])
let reps = int(args()[1])
seed(0)
let x = rand([n]) - 0.5
var y = chain(x)
print(f"CHECK {float(total(y))}")
for r in range(5) {
    let t0 = time()
    for i in range(reps) {
        y = chain(x)
    }
    let s = float(total(y))
    print(f"TIME {(time() - t0) / float(reps)}")
}
"""

MATMUL = """
graph fn mm(a: f32[?, ?], b: f32[?, ?]) {
    return a @ b
}
graph fn total(x: f32[?, ?]) {
    return sum(x)
}
let m = int(args()[0])
let reps = int(args()[1])
seed(0)
let a = rand([m, m])
let b = rand([m, m])
var c = mm(a, b)
print(f"CHECK {float(total(c))}")
for r in range(5) {
    let t0 = time()
    for i in range(reps) {
        c = mm(a, b)
    }
    let s = float(total(c))
    print(f"TIME {(time() - t0) / float(reps)}")
}
"""


def times_of(out):
    return [float(l.split()[1]) for l in out.splitlines() if l.startswith("TIME ")]


def run_tdl(tdl, device, text, args, timeout=600):
    with tempfile.NamedTemporaryFile("w", suffix=".tdl", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        r = subprocess.run([tdl, "run", "--device", device, path] + [str(a) for a in args], capture_output=True,
                           text=True, timeout=timeout)
    finally:
        os.unlink(path)
    if r.returncode != 0:
        return None, (r.stderr.strip().splitlines() or ["exit %d" % r.returncode])[-1]
    t = times_of(r.stdout)
    return (statistics.median(t) if t else None), None if t else "no TIME lines"


def peer(kind, size):
    exe = os.path.join(tempfile.gettempdir(), "tdl_gpu_peer")
    c = subprocess.run(["cc", "-O2", "-o", exe, os.path.join(HERE, "gpu", "peer.c"), "-ldl"], capture_output=True,
                       text=True)
    if c.returncode != 0:
        return None, "cannot compile bench/gpu/peer.c: " + c.stderr.strip()
    r = subprocess.run([exe, kind, str(size)], capture_output=True, text=True, timeout=300)
    line = (r.stdout.strip().splitlines() or ["ERROR no output"])[-1]
    if line.startswith("SECONDS "):
        return float(line.split()[1]), None
    return None, line.replace("ERROR ", "")


def torch_mlp(reps):
    script = os.path.join(ROOT, "bench", "workloads", "mlp_step_graph", "peer_torch.py")
    code = ("import torch, sys\n"
            "assert torch.cuda.is_available(), 'PyTorch has no CUDA here'\n"
            "torch.set_default_device('cuda')\n"
            "sys.argv = [sys.argv[0], '%d']\n"
            "exec(open(%r).read().replace('torch.set_num_threads(2)', ''))\n" % (reps, script))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        return None, (r.stderr.strip().splitlines() or ["exit %d" % r.returncode])[-1]
    t = times_of(r.stdout)[2:]
    return (statistics.median(t) if t else None), None


def mlp(tdl, device, reps):
    path = os.path.join(ROOT, "bench", "workloads", "mlp_step_graph", "tdl.tdl")
    r = subprocess.run([tdl, "run", "--device", device, path, str(reps)], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        return None, (r.stderr.strip().splitlines() or ["exit %d" % r.returncode])[-1]
    t = times_of(r.stdout)[2:]  # the first calls compile
    return (statistics.median(t) if t else None), None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tdl", default=os.path.join(ROOT, "build", "tdl"))
    ap.add_argument("--device", default="cuda", choices=["cuda", "emu"])
    ap.add_argument("--n", type=int, default=1 << 26)
    ap.add_argument("--m", type=int, default=4096)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    dev = args.device
    rows = []

    def row(name, need, ratio, detail):
        ok = "yes" if ratio is not None and ratio >= need else "NO"
        rows.append(f"| {name} | >= {need:.2f}x | {'%.2fx' % ratio if ratio is not None else 'not measured'} "
                    f"| {detail} | {ok} |")

    t, why = run_tdl(args.tdl, dev, CHAIN, [args.n, args.reps])
    p, pwhy = peer("copy", args.n)
    gb = lambda s: 8.0 * args.n / s / 1e9
    if t and p:
        row(f"fused chain, 2^{args.n.bit_length() - 1} f32", 0.70, p / t,
            f"tdl {gb(t):.0f} GB/s, cuMemcpyDtoD {gb(p):.0f} GB/s")
    else:
        row(f"fused chain, {args.n} f32", 0.70, None, "; ".join(
            [f"tdl {gb(t):.2f} GB/s" if t else f"tdl: {why}", f"peer: {pwhy}" if pwhy else ""]).strip("; "))
    t, why = run_tdl(args.tdl, dev, MATMUL, [args.m, max(2, args.reps // 2)])
    p, pwhy = peer("sgemm", args.m)
    tf = lambda s: 2.0 * args.m ** 3 / s / 1e12
    if t and p:
        row(f"matmul {args.m}x{args.m} f32", 0.80, p / t, f"tdl {tf(t):.1f} TFLOP/s, cuBLAS alone {tf(p):.1f} TFLOP/s")
    else:
        row(f"matmul {args.m}x{args.m} f32", 0.80, None, "; ".join(
            [f"tdl {tf(t):.4f} TFLOP/s" if t else f"tdl: {why}", f"peer: {pwhy}" if pwhy else ""]).strip("; "))
    t, why = mlp(args.tdl, dev, 30)
    tc, _ = mlp(args.tdl, "cpu", 30)
    tt, twhy = torch_mlp(30) if dev == "cuda" else (None, "not on the emulated device")
    detail = (f"tdl on the device {t * 1e3:.3f} ms/step" if t else f"tdl: {why}") + \
        (f", tdl on the CPU {tc * 1e3:.3f} ms" if tc else "") + \
        (f", PyTorch on the GPU {tt * 1e3:.3f} ms" if tt else f" (PyTorch: {twhy})")
    row("MLP training step vs PyTorch on the same GPU", 1.0, tt / t if t and tt else None, detail)

    table = ["| benchmark | need | ratio | figures | met |", "|---|---|---|---|---|"] + rows
    text = (f"GPU benchmarks, `bench/gpu.py --device {dev}` (ratios: the peer's time / tdl's time)\n\n" +
            "\n".join(table) + "\n")
    print(text)
    if args.out:
        tmp = args.out + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
