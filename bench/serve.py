#!/usr/bin/env python3
"""Serving benchmark (issue 20): the digits MLP exported by `tdl export` and served by
`tdl serve`, against the same model (same layers and sizes) in PyTorch served by Python's
ThreadingHTTPServer (one request per call: without batching, which is faster there), at 1,
16 and 64 concurrent keep-alive clients, measured by wrk (throughput, p50 and p99 latency);
and the raw in-process call of one row (TDL's load_model, PyTorch's module).

    python3 bench/serve.py --tdl build/tdl [--seconds 5] [--out bench/SERVING.md]

Needs wrk and PyTorch (Debian's python3-torch); run with /usr/bin/python3.
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROW = [0.0, 0.0, 0.3125, 0.8125, 0.5625, 0.0625, 0.0, 0.0, 0.0, 0.0, 0.8125, 0.9375, 0.625, 0.9375, 0.3125, 0.0,
       0.0, 0.1875, 0.9375, 0.125, 0.0, 0.6875, 0.5, 0.0, 0.0, 0.25, 0.75, 0.0, 0.0, 0.5, 0.5, 0.0, 0.0, 0.3125, 0.5,
       0.0, 0.0, 0.5625, 0.5, 0.0, 0.0, 0.25, 0.6875, 0.0, 0.0625, 0.75, 0.4375, 0.0, 0.0, 0.125, 0.875, 0.3125,
       0.625, 0.75, 0.0, 0.0, 0.0, 0.0, 0.375, 0.8125, 0.625, 0.0, 0.0, 0.0]


def wrk(url, body, conns, seconds, tmp):
    lua = os.path.join(tmp, "post.lua")
    with open(lua, "w") as f:
        f.write('wrk.method = "POST"\nwrk.body = ' + json.dumps(body) +
                '\nwrk.headers["Content-Type"] = "application/json"\n')
    r = subprocess.run(["wrk", f"-t{min(conns, 2)}", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", lua, url],
                       capture_output=True, text=True, timeout=seconds + 60)
    out = r.stdout

    def ms(label):
        m = re.search(rf"^\s*{label}\s+([0-9.]+)(us|ms|s)\s*$", out, re.M)
        if not m:
            return float("nan")
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v

    rps = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*", out)
    return {"rps": float(rps.group(1)) if rps else 0.0, "p50": ms("50%"), "p99": ms("99%"),
            "errors": errors.group(0) if errors else ""}


TORCH_SERVER = r'''
import json, sys, torch
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
torch.set_num_threads(1)
torch.manual_seed(0)
w1, b1 = torch.randn(64, 64) * 0.1, torch.zeros(64)
w2, b2 = torch.randn(64, 10) * 0.1, torch.zeros(10)
def predict(x):
    logits = torch.relu(x @ w1 + b1) @ w2 + b2
    return torch.softmax(logits, dim=1), torch.argmax(logits, dim=1)
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else the peer waits 40 ms for delayed ACKs per request
    def log_message(self, *a): pass
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with torch.no_grad():
            p, c = predict(torch.tensor(body["instances"], dtype=torch.float32))
        out = json.dumps({"predictions": [{"probs": pr, "classes": cl} for pr, cl in zip(p.tolist(), c.tolist())]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
s = ThreadingHTTPServer(("127.0.0.1", 0), H)
s.daemon_threads = True
print(s.server_address[1], flush=True)
s.serve_forever()
'''

TORCH_INPROC = r'''
import time, torch
torch.set_num_threads(1)
w1, b1 = torch.randn(64, 64) * 0.1, torch.zeros(64)
w2, b2 = torch.randn(64, 10) * 0.1, torch.zeros(10)
x = torch.rand(1, 64)
def predict(x):
    logits = torch.relu(x @ w1 + b1) @ w2 + b2
    return torch.softmax(logits, dim=1), torch.argmax(logits, dim=1)
with torch.no_grad():
    for _ in range(1000): predict(x)
    n = 20000
    t0 = time.perf_counter()
    for _ in range(n): predict(x)
    print((time.perf_counter() - t0) / n * 1e6)
'''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tdl", required=True)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "SERVING.md"))
    a = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench/serve.py needs wrk (scripts/install-deps.sh installs it)")
    tdl = os.path.abspath(a.tdl)
    tmp = tempfile.mkdtemp(prefix="tdl-bench-serve-")
    env = dict(os.environ, TDL_CACHE_DIR="off")
    model = os.path.join(tmp, "digits.tdlm")
    subprocess.run([tdl, "export", "examples/serving/digits_model.tdl", "--fn", "predict", "-o", model], cwd=ROOT,
                   check=True, capture_output=True, env=env)
    body = json.dumps({"instances": [ROW]})
    rows = []
    # TDL server
    p = subprocess.Popen([tdl, "serve", model, "--port", "0"], stdout=subprocess.PIPE, text=True, env=env)
    port = int(re.search(r":(\d+)/", p.stdout.readline()).group(1))
    tdl_url = f"http://127.0.0.1:{port}/v1/models/digits:predict"
    # PyTorch server
    q = subprocess.Popen([sys.executable, "-c", TORCH_SERVER], stdout=subprocess.PIPE, text=True)
    tport = int(q.stdout.readline())
    torch_url = f"http://127.0.0.1:{tport}/"
    try:
        for conns in (1, 16, 64):
            for name, url in (("tdl serve", tdl_url), ("PyTorch + http.server", torch_url)):
                wrk(url, body, conns, 1, tmp)  # warm up
                r = wrk(url, body, conns, a.seconds, tmp)
                rows.append((conns, name, r))
                print(f"{conns:3d} clients  {name:24s} {r['rps']:9.0f} req/s  p50 {r['p50']:7.2f} ms  "
                      f"p99 {r['p99']:7.2f} ms {r['errors']}", flush=True)
        metrics = subprocess.run(["curl", "-s", f"http://127.0.0.1:{port}/metrics"], capture_output=True, text=True).stdout
        bsum = re.search(r"^tdl_batch_size_sum (\S+)", metrics, re.M)
        bcnt = re.search(r"^tdl_batch_size_count (\S+)", metrics, re.M)
        mean_batch = float(bsum.group(1)) / max(1.0, float(bcnt.group(1))) if bsum and bcnt else float("nan")
    finally:
        p.terminate()
        q.terminate()
        p.wait()
        q.wait()
    # In-process calls of one row.
    script = os.path.join(tmp, "inproc.tdl")
    with open(script, "w") as f:
        f.write(f'let m = load_model("{model}")\nlet x = rand([1, 64])\n'
                'for i in range(1000) { let r = m.predict(x) }\n'
                'let n = 20000\nlet t0 = time()\nfor i in range(n) { let r = m.predict(x) }\n'
                'print((time() - t0) / float(n) * 1000000.0)\n')
    tdl_us = float(subprocess.run([tdl, "run", script], capture_output=True, text=True, env=env, check=True).stdout)
    torch_us = float(subprocess.run([sys.executable, "-c", TORCH_INPROC], capture_output=True, text=True,
                                    check=True).stdout)
    shutil.rmtree(tmp, ignore_errors=True)

    cpu = platform.processor() or platform.machine()
    lines = [
        "# Serving benchmark",
        "",
        f"Measured {datetime.date.today()} on {os.cpu_count()} cores ({cpu}) by `bench/serve.py` "
        f"({a.seconds} s per point, wrk on the same machine): the digits MLP (64 → 64 → 10, softmax and argmax) "
        "exported by `tdl export` and served by `tdl serve` (dynamic batching, defaults), against the same layers "
        "in PyTorch served by Python's ThreadingHTTPServer (one request per call, Nagle off). One row per request.",
        "",
        "| clients | server | requests/s | p50 latency | p99 latency | errors |",
        "|---|---|---|---|---|---|",
    ]
    for conns, name, r in rows:
        lines.append(f"| {conns} | {name} | {r['rps']:.0f} | {r['p50']:.2f} ms | {r['p99']:.2f} ms | "
                     f"{r['errors'] or 'none'} |")
    ratio = {c: next(r["rps"] for cc, n, r in rows if cc == c and n == "tdl serve") /
             max(1e-9, next(r["rps"] for cc, n, r in rows if cc == c and n != "tdl serve")) for c in (1, 16, 64)}
    lines += [
        "",
        "Throughput of `tdl serve` over PyTorch + http.server: " +
        ", ".join(f"{ratio[c]:.1f}x at {c} client{'s' if c > 1 else ''}" for c in (1, 16, 64)) +
        f". Mean batch formed by `tdl serve` over the run: {mean_batch:.1f} rows.",
        "",
        "| in-process call of one row | time per call |",
        "|---|---|",
        f"| TDL `load_model(...).predict(x)` from a script | {tdl_us:.1f} µs |",
        f"| PyTorch eager, one thread | {torch_us:.1f} µs |",
        "",
    ]
    text = "\n".join(lines)
    with open(a.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
