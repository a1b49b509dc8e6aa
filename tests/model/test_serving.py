#!/usr/bin/env python3
"""Train → export → load → serve, as a user runs it (issue 20's acceptance):

  - `tdl export` of the digits MLP after training; `tdl inspect` (text and --json);
  - a fresh process with the compile cache off loads the .tdlm with load_model and gets the
    training process's classes and probabilities (within 1e-6) on the held-out set, with the
    object code and recompiled from the IR (TDL_MODEL_RECOMPILE=1);
  - damaged, truncated and foreign files are clear errors (exit 1), never a crash;
  - `tdl serve`: status, metadata, predict (rows and columns), a load test of 64 concurrent
    keep-alive clients sending 5 000 distinct requests (every answer 200 and its own input's;
    mean batch >= 4; p99 latency printed), bad requests with their statuses while the server
    keeps serving, wrk at 256 connections for 10 s without errors (when wrk is installed),
    and SIGTERM draining requests in flight.

Usage: test_serving.py --tdl build/tdl [--quick]
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300, **kw)


def env_nocache(**extra):
    e = dict(os.environ, TDL_CACHE_DIR="off")
    e.update(extra)
    return e


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tdl", required=True)
    ap.add_argument("--quick", action="store_true", help="skip the load tests")
    a = ap.parse_args()
    tdl = os.path.abspath(a.tdl)
    tmp = tempfile.mkdtemp(prefix="tdl-serving-")
    try:
        model = os.path.join(tmp, "digits.tdlm")
        r = run([tdl, "export", "examples/serving/digits_model.tdl", "--fn", "predict", "--args", "examples/data/digits.csv.gz", tmp,
                 "-o", model],
                env=env_nocache())
        check(r.returncode == 0 and os.path.exists(model), f"export the trained digits MLP ({r.stderr.strip()[-300:]})")
        m = re.search(r"test accuracy: ([0-9.]+)%", r.stdout)
        check(m is not None and float(m.group(1)) > 95, f"the training process's accuracy: {r.stdout.strip()}")
        x_test = np.load(os.path.join(tmp, "digits_x_test.npy"))
        probs = np.load(os.path.join(tmp, "digits_probs.npy"))
        classes = np.load(os.path.join(tmp, "digits_classes.npy"))

        # inspect
        r = run([tdl, "inspect", model])
        check(r.returncode == 0 and "predict(x: f32[B, 64]) -> (probs: f32[B, 10], classes: i64[B])" in r.stdout
              and "batch dim B" in r.stdout and "f32[64, 64]" in r.stdout, "tdl inspect: signature and weights")
        r = run([tdl, "inspect", model, "--json"])
        info = json.loads(r.stdout) if r.returncode == 0 else {}
        check(info.get("functions", [{}])[0].get("inputs") == [{"name": "x", "dtype": "f32", "shape": ["B", 64]}]
              and len(info.get("weights", [])) >= 2, "tdl inspect --json")

        # load_model in a fresh process, compile cache off: object code, then recompiled.
        script = os.path.join(tmp, "use.tdl")
        with open(script, "w") as f:
            f.write(f'let m = load_model("{model}")\n'
                    f'let r = m.predict(load_npy("{tmp}/digits_x_test.npy"))\n'
                    f'save_npy("{tmp}/loaded_probs.npy", r.probs)\n'
                    f'save_npy("{tmp}/loaded_classes.npy", r.classes)\n'
                    'print(m)\n')
        def same_results(r, stem):  # the script ran and saved the classes and probabilities expected
            if r.returncode != 0:
                return False
            p2 = np.load(os.path.join(tmp, f"{stem}_probs.npy"))
            c2 = np.load(os.path.join(tmp, f"{stem}_classes.npy"))
            return np.array_equal(c2, classes) and float(np.max(np.abs(p2 - probs))) <= 1e-6

        for how, extra in (("object code", {}), ("recompiled from the IR", {"TDL_MODEL_RECOMPILE": "1"})):
            r = run([tdl, "run", script], env=env_nocache(**extra))
            check(same_results(r, "loaded"), f"load_model in a fresh process ({how}): same classes, probabilities within 1e-6 {r.stderr[-300:]}")

        # Its fns inside a graph fn (SPEC §12): one op of the trace, the same results, also
        # from the compile cache (its key names the model's content), inside a loop too.
        script = os.path.join(tmp, "use_graph.tdl")
        with open(script, "w") as f:
            f.write(f'let m = load_model("{model}")\n'
                    'graph fn g(x: f32[?, 64], n: i64[]) {\n'
                    '    var r = m.predict(x)\n'
                    '    for i in range(n) { r = m.predict(x) }\n'
                    '    return (r.probs * 1.0, r.classes)\n'
                    '}\n'
                    f'let (p, c) = g(load_npy("{tmp}/digits_x_test.npy"), 2)\n'
                    f'save_npy("{tmp}/graph_probs.npy", p)\n'
                    f'save_npy("{tmp}/graph_classes.npy", c)\n')
        cache = os.path.join(tmp, "cache")
        for how, env in (("compile cache off", env_nocache()), ("compile cache stored", dict(os.environ, TDL_CACHE_DIR=cache)),
                         ("compile cache hit", dict(os.environ, TDL_CACHE_DIR=cache))):
            if how == "compile cache hit":
                time.sleep(1.5)  # the first run's detached link renames the entry into place
            r = run([tdl, "run", script], env=env)
            check(same_results(r, "graph"), f"a loaded model's fn in a graph fn ({how}): same classes and probabilities {r.stderr[-300:]}")
        with open(os.path.join(tmp, "reexport.tdl"), "w") as f:
            f.write(f'let m = load_model("{model}")\ngraph fn g(x: f32[B, 64]) {{ return m.predict(x).probs }}\n')
        r = run([tdl, "export", os.path.join(tmp, "reexport.tdl"), "--fn", "g", "-o", os.path.join(tmp, "re.tdlm")])
        check(r.returncode == 1 and "calls a loaded model's fn 'predict'" in r.stderr
              and not os.path.exists(os.path.join(tmp, "re.tdlm")), f"export of a fn calling a loaded model: {r.stderr.strip()[:200]}")

        bad_files(tdl, model, tmp)
        batching_rules(tdl, tmp)
        serve_limits(tdl, tmp)
        c_api(tdl, model, tmp, x_test, probs, classes)
        serve(tdl, model, tmp, x_test, probs, classes, a.quick)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    print("all passed")
    return 0


def bad_files(tdl, model, tmp):
    data = open(model, "rb").read()
    cases = {
        "truncated": (data[: len(data) // 2], "truncated"),
        "empty": (b"", "fewer than its 128-byte header"),
        "not a model": (b"hello world, this is not a model" * 8, "magic"),
        "newer version": (data[:8] + bytes([9, 0, 0, 0]) + data[12:], "format version 9"),
        "a flipped byte in the weights": (data[:-200] + bytes([data[-200] ^ 0x40]) + data[-199:], "damaged"),
        "appended to": (data + b"x", "truncated or appended"),
    }
    for name, (content, words) in cases.items():
        p = os.path.join(tmp, "bad.tdlm")
        with open(p, "wb") as f:
            f.write(content)
        for cmd in ([tdl, "inspect", p], [tdl, "serve", p, "--port", "0"]):
            r = run(cmd, env=env_nocache())
            check(r.returncode == 1 and words in r.stderr and "invalid model file" in r.stderr
                  and "internal" not in r.stderr,
                  f"{cmd[1]} of a {name} file: {r.stderr.strip()[:160]}")
    r = run([tdl, "inspect", os.path.join(tmp, "missing.tdlm")])
    check(r.returncode == 1 and "cannot open" in r.stderr, "a missing model file")
    # A name no request could reach (a percent escape is decoded, dot segments dropped).
    for bad in ("%41", ".", "..", "a\\b", "tab\there"):
        r = run([tdl, "serve", model, "--port", "0", "--name", bad], env=env_nocache())
        check(r.returncode == 2 and "cannot stand in a URL" in r.stderr, f"serve --name {bad!r}: {r.stderr.strip()[:160]}")
    # Scripts: a model called inside a graph fn, a missing field, a missing file, a wrong argument.
    src = os.path.join(tmp, "misuse.tdl")
    for body, words in ((f'let m = load_model("{model}")\ngraph fn g(x) {{ with tape() as t {{ let y = sum(m.predict(x).probs) }}\n'
                         'return t.gradient(y, x) }\nprint(g(ones([1, 64])))\n',
                         "2:48: error: predict: 'x' is recorded on a tape, but a loaded model's functions are not "
                         "differentiable"),
                        (f'let m = load_model("{model}")\ngraph fn g(x) {{ return m.predict(x) }}\nprint(g(ones([1, 63])))\n',
                         "2:24: error: predict: 'x' must be f32[B, 64], got f32[1, 63]"),
                        (f'let m = load_model("{model}")\nprint(m.nope(1))\n', "2:7: error"),
                        (f'let m = load_model("{tmp}/none.tdlm")\n', "cannot open"),
                        (f'let m = load_model("{model}")\nprint(m.predict(ones([2, 63])))\n',
                         "'x' must be f32[B, 64], got f32[2, 63]"),
                        (f'let m = load_model("{model}")\nprint(m.predict("x"))\n', "'x' must be f32[B, 64], got string"),
                        # A gradient through compiled model code would be silently zero.
                        (f'let m = load_model("{model}")\nlet x = ones([1, 64])\n'
                         'with tape() as t { let y = sum(m.predict(x * 2.0)) }\nprint(t.gradient(y, x))\n',
                         "3:32: error: predict: 'x' is recorded on a tape, but a loaded model's functions are not "
                         "differentiable")):
        with open(src, "w") as f:
            f.write(body)
        r = run([tdl, "run", src], env=env_nocache())
        check(r.returncode == 1 and words in r.stderr and "internal" not in r.stderr,
              f"load_model misuse: {r.stderr.strip().splitlines()[0] if r.stderr.strip() else ''}")
    # A number for an integer or bool parameter of a loaded model: taken where it keeps its
    # value (as by the graph fn itself), refused otherwise (1.5 was truncated to 1).
    ints_model = export_fns(tdl, tmp, "ints", "graph fn k(i: i64[]) -> i64[] { return i * 2 }\n"
                            "graph fn k32(i: i32[]) -> i32[] { return i + 0 }\n"
                            "graph fn kb(b: bool[]) -> i64[] { return cast(b, i64) }\n", ["k", "k32", "kb"])
    for call, out in (("m.k(3), m.k32(-7), m.kb(true), m.k(true)", "6 -7 1 2\n"),
                      ("m.k(1.5)", "k: 'i' must be i64[], got f32"),
                      ("m.kb(2)", "kb: 'b' must be bool[], got i64"),
                      ("m.k32(3000000000)", "the integer 3000000000 is out of range for i32")):
        with open(src, "w") as f:
            f.write(f'let m = load_model("{ints_model}")\nprint({call})\n')
        r = run([tdl, "run", src], env=env_nocache())
        ok = r.stdout == out if out.endswith("\n") else (r.returncode == 1 and out in r.stderr)
        check(ok and "internal" not in r.stderr, f"loaded model called with {call}: {(r.stdout + r.stderr).strip()[:200]}")
    # The same rules inside a graph fn (a number argument known at trace time, or not).
    for call, out in (("g(3), h(), m.kb(true)", "(6, -7, 1)\n"), ("g(1.5)", "2:24: error: k: 'i' must be i64[], got f32"),
                      ("m.k32(3000000000)", "the integer 3000000000 is out of range for i32")):
        with open(src, "w") as f:
            f.write(f'let m = load_model("{ints_model}")\ngraph fn g(a) {{ return m.k(a) }}\n'
                    f'graph fn h() {{ return m.k32(-7) }}\ngraph fn t() {{ return ({call}) }}\nprint(t())\n')
        r = run([tdl, "run", src], env=env_nocache())
        ok = r.stdout == out if out.endswith("\n") else (r.returncode == 1 and out in r.stderr)
        check(ok and "internal" not in r.stderr, f"loaded model called in a graph fn with {call}: {(r.stdout + r.stderr).strip()[:200]}")
    # Records and tuples: the arguments walk the signature's structure with the same words
    # eagerly and inside a graph fn (one walker, vm/OpaqueFn.h); results keep it.
    nested = export_fns(tdl, tmp, "nested", "graph fn f(p: {w: f32[2], b: f32[]}, xs: (f32[2], f32[2])) "
                        "{ return (p.w * xs[0] + p.b, {s: xs[1]}) }\n", ["f"])
    for call, out in (("m.f(xs=xs, p=p)", "([1.5, 2.5], {s: [3.0, 4.0]})\n"),
                      ("m.f(p, [xs[0]])", "f: 'xs' has too few items"),
                      ("m.f(p, (xs[0], xs[1], xs[1]))", "f: 'xs' has too many items"),
                      ("m.f({w: p.w}, xs)", "f: 'p' has no field 'b'"),
                      ("m.f({w: p.w, b: p.b, c: 1.0}, xs)", "f: 'p' has fields the model does not take"),
                      ("m.f(1.0, xs)", "f: 'p' must be a record, got f32[]"),
                      ("m.f(p)", "f is missing its argument 'xs'"),
                      ("m.f(p, xs, 1)", "f takes 2 arguments, got 3"),
                      ("m.f(p, xs, p=p)", "f got two values for 'p'"),
                      ("m.f(p, q=xs)", "f has no parameter named 'q'"),
                      ('m.f(p, xs=(xs[0], "a"))', "f: 'xs.1' must be f32[2], got string")):
        for where, line in (("eagerly", f"print({call})"), ("in a graph fn", f"graph fn g(p, xs) {{ return {call} }}\nprint(g(p, xs))")):
            with open(src, "w") as f:
                f.write(f'let m = load_model("{nested}")\nlet p = {{w: [1.0, 2.0], b: 0.5}}\n'
                        f'let xs = ([1.0, 1.0], [3.0, 4.0])\n{line}\n')
            r = run([tdl, "run", src], env=env_nocache())
            ok = r.stdout == out if out.endswith("\n") else (r.returncode == 1 and f"error: {out}" in r.stderr)
            check(ok and "internal" not in r.stderr, f"loaded model called {where} with {call}: {(r.stdout + r.stderr).strip()[:200]}")
    # Export errors: a fn that is not a graph fn, unannotated, missing.
    src = os.path.join(tmp, "bad_export.tdl")
    with open(src, "w") as f:
        f.write("fn plain(x) { return x }\ngraph fn loose(x) { return x * 2.0 }\n")
    for fn, words in (("plain", "not a graph fn"), ("loose", "annotated"), ("nothing", "not defined")):
        r = run([tdl, "export", src, "--fn", fn, "-o", os.path.join(tmp, "x.tdlm")])
        check(r.returncode == 1 and words in r.stderr, f"export --fn {fn}: {r.stderr.strip()[:160]}")
    # A repeated --fn is refused before the script runs (its print never shows).
    with open(src, "a") as f:
        f.write('print("ran")\n')
    r = run([tdl, "export", src, "--fn", "loose", "--fn", "loose", "-o", os.path.join(tmp, "x.tdlm")])
    check(r.returncode == 2 and "--fn loose is given twice" in r.stderr and "ran" not in r.stdout,
          f"export --fn loose --fn loose: {r.stdout.strip()[:80]} {r.stderr.strip()[:160]}")
    # A fn every call of which fails (its error raised where it runs, as eagerly) is refused
    # with that error, not exported as a model that always fails.
    src = os.path.join(tmp, "always.tdl")
    with open(src, "w") as f:
        f.write("graph fn always(x: f32[B, 3]) -> f32[B, 3] {\n    let q = [1, 2][5]\n    return x * float(q)\n}\n")
    r = run([tdl, "export", src, "--fn", "always", "-o", os.path.join(tmp, "always.tdlm")])
    check(r.returncode == 1 and "cannot export 'always': every call of it fails: index 5 is out of range for axis 0 "
          "of size 2 (at " in r.stderr and not os.path.exists(os.path.join(tmp, "always.tdlm")),
          f"export of a fn that always fails: {r.stderr.strip()[:200]}")
    # A script that ends with exit(0) succeeded: its fns are exported with what it bound;
    # another status is a failure, and nothing is written.
    src = os.path.join(tmp, "exits.tdl")
    for code, ok in ((0, True), (3, False)):
        out = os.path.join(tmp, f"exits{code}.tdlm")
        with open(src, "w") as f:
            f.write(f"let k = 3.0\ngraph fn scale(x: f32[B]) -> f32[B] {{ return x * k }}\nexit({code})\n")
        r = run([tdl, "export", src, "--fn", "scale", "-o", out])
        check((r.returncode == 0 and os.path.exists(out)) if ok else
              (r.returncode == 1 and "the script exited with status 3 before its fns were exported" in r.stderr
               and not os.path.exists(out)), f"export of a script that ends with exit({code}): {r.stderr.strip()[:200]}")


def export_fns(tdl, tmp, name, text, fns):
    """Writes NAME.tdl with `text` and exports `fns` from it to NAME.tdlm (checked); its path."""
    src, model = os.path.join(tmp, name + ".tdl"), os.path.join(tmp, name + ".tdlm")
    with open(src, "w") as f:
        f.write(text)
    r = run([tdl, "export", src, *[a for fn in fns for a in ("--fn", fn)], "-o", model])
    check(r.returncode == 0, f"export of {', '.join(fns)}: {r.stderr.strip()[-200:]}")
    return model


def batching_rules(tdl, tmp):
    """A fn whose rows depend on each other is never batched (checked at startup); one whose
    rows are independent is. Each request's answer is its own, under concurrency."""
    model = export_fns(tdl, tmp, "mix", "graph fn centre(x: f32[B, 4]) -> f32[B, 4] { return x - mean(x, axis=0) }\n"
                       "graph fn double(x: f32[B, 4]) -> f32[B, 4] { return x * 2.0 }\n"
                       "graph fn pair(x: f32[B, 2], y: f32[B, 2]) -> f32[B, 2] { return x - y }\n",
                       ["centre", "double", "pair"])
    s = Server(tdl, model, "--batch-timeout-us", "20000", fns=3)
    try:
        lines = s.banner
        check("centre" in lines and "one request per call: its rows are not independent" in lines
              and "batched up to 64 rows" in lines, f"startup says which fns are batched: {lines!r}")
        results = {}

        def one(i):
            x = [[float(i), float(i + 1), 0.0, 1.0], [float(3 * i), 1.0, 2.0, float(i)]]
            st, body = s.request("POST", "/v1/models/mix:predict",
                                 json.dumps({"signature_name": "centre", "instances": x}))
            want = (np.array(x) - np.array(x).mean(axis=0)).tolist()
            results[i] = st == 200 and np.allclose(json.loads(body)["predictions"], want, atol=1e-5)

        threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check(all(results.values()) and len(results) == 16, "concurrent requests to a row-mixing fn: each its own answer")
        # Outputs that are not finite: NaN, Infinity, -Infinity as TensorFlow Serving writes them
        # (not null, which loses which one).
        st, body = s.request("POST", "/v1/models/mix:predict", json.dumps(
            {"signature_name": "double", "instances": [[3e38, -3e38, 0, 1]]}))
        check(st == 200 and body == b'{"predictions":[[Infinity,-Infinity,0.0,2.0]]}', f"infinite outputs: {st} {body!r}")
        # Named instances: one object per row with a key per input; a key that is no input is
        # a 400 naming it, never silently dropped.
        st, body = s.request("POST", "/v1/models/mix:predict", json.dumps(
            {"signature_name": "pair", "instances": [{"x": [5, 1], "y": [1, 1]}, {"y": [0, 2], "x": [1, 2]}]}))
        check(st == 200 and json.loads(body)["predictions"] == [[4.0, 0.0], [1.0, 0.0]],
              f"named instances: {st} {body[:120]!r}")
        st, body = s.request("POST", "/v1/models/mix:predict", json.dumps(
            {"signature_name": "pair", "instances": [{"x": [5, 1], "y": [1, 1]}, {"x": [1, 2], "y": [0, 2], "z": [1]}]}))
        check(st == 400 and b'instance 1 has an unknown key \\"z\\"' in body, f"an unknown instance key: {st} {body[:160]!r}")
        # Expect: 100-continue (curl sends it before larger bodies), then the body.
        body = json.dumps({"signature_name": "double", "instances": [[1, 2, 3, 4]]}).encode()
        c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        c.sendall(b"POST /v1/models/mix:predict HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                  b"Content-Type: application/json\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        first = c.recv(4096).decode()
        c.sendall(body)
        rest = b""
        while b"predictions" not in rest:
            chunk = c.recv(4096)
            if not chunk:
                break
            rest += chunk
        c.close()
        check(first.startswith("HTTP/1.1 100") and b"HTTP/1.1 200" in rest and b"[2.0,4.0,6.0,8.0]" in rest,
              f"Expect: 100-continue is answered: {first.splitlines()[0] if first else ''}")
        c = s.conn()
        c.request("DELETE", "/v1/models/mix")
        r = c.getresponse()
        r.read()
        check(r.status == 405 and r.getheader("Allow") == "GET", f"405 names the allowed method ({r.getheader('Allow')})")
    finally:
        s.stop()


def serve_limits(tdl, tmp):
    """The first stdout line says where the server listens even when a fn prints (its trial
    calls at startup are quiet); an answer over --max-response-values numbers is a 400 sent
    before it is built (a request could ask for any size); a misspelt input name is named."""
    model = export_fns(tdl, tmp, "limits", "graph fn big(n: i64[]) -> f32[?] { return zeros([n]) }\n"
                       "graph fn loud(x: f32[B, 2]) -> f32[B, 2] { print(\"loud\", x); return x * 2.0 }\n",
                       ["big", "loud"])
    s = Server(tdl, model, "--max-response-values", "1000", fns=2)
    try:
        check(s.banner.startswith("tdl serve: model 'limits'") and "loud" not in s.banner.split("\n")[0]
              and s.banner.count("\n") == 3, f"the address first, then one line per fn: {s.banner!r}")
        st, body = s.request("POST", "/v1/models/limits:predict", json.dumps({"signature_name": "big", "inputs": 1000}))
        check(st == 200 and len(json.loads(body)["outputs"]) == 1000, f"an answer at the limit: {st}")
        st, body = s.request("POST", "/v1/models/limits:predict", json.dumps({"signature_name": "big", "inputs": 1001}))
        check(st == 400 and b"the answer would hold 1001 numbers" in body and b"--max-response-values" in body,
              f"an answer over the limit: {st} {body[:160]!r}")
        st, body = s.request("POST", "/v1/models/limits:predict", json.dumps({"signature_name": "loud", "inputs": {"y": [[1, 2]]}}))
        check(st == 400 and b'has an unknown key \\"y\\" (its keys are \\"x\\")' in body, f"a misspelt input: {st} {body[:160]!r}")
        st, body = s.request("POST", "/v1/models/limits:predict", json.dumps({"signature_name": "loud", "inputs": {"x": [[1, 2]]}}))
        check(st == 200 and json.loads(body)["outputs"] == [[2.0, 4.0]], f"the input by its name: {st} {body[:160]!r}")
    finally:
        rc, out, _ = s.stop()
    check("loud [[1.0, 2.0]]" in out and out.count("loud [") == 1, f"a fn's print while serving reaches stdout, the trial calls' do not: {out!r}")


def c_api(tdl, model, tmp, x_test, probs, classes):
    """The C example (examples/serving/predict.c) and the ctypes one, against libtdl_model.so."""
    lib = os.path.join(os.path.dirname(tdl), "libtdl_model.so")
    if not os.path.exists(lib):
        check(False, f"the C API library {lib} is built")
        return
    np.save(os.path.join(tmp, "x_all.npy"), x_test)
    exe = os.path.join(tmp, "predict_c")
    cc = shutil.which("cc") or "gcc"
    r = run([cc, "-O1", "-o", exe, "examples/serving/predict.c", "-Itools/capi", f"-L{os.path.dirname(lib)}",
             "-ltdl_model", f"-Wl,-rpath,{os.path.dirname(lib)}"])
    check(r.returncode == 0, f"the C example compiles against tdl_model.h {r.stderr[-400:]}")
    if r.returncode == 0:
        rows = len(x_test)  # the whole held-out set
        args = [exe, model] + [f"{v:.9g}" for v in x_test.ravel()]
        r = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env_nocache())
        ok = r.returncode == 0
        if ok:
            got = [list(map(float, line.split())) for line in r.stdout.strip().splitlines()[-rows:]]
            got_classes = [int(g[0]) for g in got]
            got_probs = np.array([g[1:] for g in got])
            ok = got_classes == list(classes) and np.max(np.abs(got_probs - probs)) <= 1e-6
        check(ok, f"the C example predicts the training process's classes and probabilities {r.stderr[-300:]}")
    r = subprocess.run([sys.executable, "examples/serving/predict.py", lib, model, os.path.join(tmp, "x_all.npy")],
                       capture_output=True, text=True, timeout=60, cwd=ROOT, env=env_nocache())
    ok = r.returncode == 0
    if ok:
        out = json.loads(r.stdout.strip().splitlines()[-1])
        ok = out["classes"] == list(map(int, classes)) and np.max(np.abs(np.array(out["probs"]) - probs)) <= 1e-6
    check(ok, f"the Python (ctypes) example predicts the same {r.stderr[-300:]}")


class Server:
    def __init__(self, tdl, model, *extra, fns=1):
        self.p = subprocess.Popen([tdl, "serve", model, "--port", "0", *extra], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env_nocache())
        line = self.p.stdout.readline()
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if not m:
            raise RuntimeError("the server did not start: " + line + self.p.stderr.read())
        self.port = int(m.group(1))
        self.banner = line
        for _ in range(fns):  # one line per function follows
            self.banner += self.p.stdout.readline()

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def request(self, method, path, body=None, conn=None):
        c = conn or self.conn()
        c.request(method, path, body=body, headers={"Content-Type": "application/json"} if body is not None else {})
        r = c.getresponse()
        data = r.read()
        if conn is None:
            c.close()
        return r.status, data

    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        try:
            out, err = self.p.communicate(timeout=40)
        except subprocess.TimeoutExpired:
            self.p.kill()
            out, err = self.p.communicate()
        return self.p.returncode, out, err


def serve(tdl, model, tmp, x_test, probs, classes, quick):
    s = Server(tdl, model, "--max-batch", "64", "--batch-timeout-us", "2000", "--request-timeout", "2")
    base = "/v1/models/digits"
    try:
        st, body = s.request("GET", base)
        check(st == 200 and json.loads(body)["model_version_status"][0]["state"] == "AVAILABLE", "GET status")
        st, body = s.request("GET", base + "/metadata")
        md = json.loads(body) if st == 200 else {}
        sig = md.get("metadata", {}).get("signature_def", {}).get("signature_def", {}).get("predict", {})
        check(st == 200 and sig.get("inputs", {}).get("x", {}).get("dtype") == "DT_FLOAT", "GET metadata")
        st, body = s.request("POST", base + ":predict", json.dumps({"instances": x_test.tolist()}))
        preds = json.loads(body).get("predictions", []) if st == 200 else []
        check(st == 200 and [p["classes"] for p in preds] == list(classes)
              and max(abs(np.array([p["probs"] for p in preds]) - probs).ravel()) <= 1e-6,
              "POST predict (instances): the held-out set's classes, probabilities within 1e-6")
        st, body = s.request("POST", base + ":predict",
                             json.dumps({"signature_name": "predict", "inputs": {"x": x_test[:3].tolist()}}))
        out = json.loads(body).get("outputs", {}) if st == 200 else {}
        check(st == 200 and out.get("classes") == list(classes[:3]), "POST predict (inputs, columns)")

        bad_requests(s, base, x_test)
        if not quick:
            load_test(s, base, tdl, model, tmp, x_test)
            wrk_test(s, base, x_test, tmp)
        # Draining: requests in flight when SIGTERM arrives are answered.
        results = []

        def one(i):
            try:
                results.append(s.request("POST", base + ":predict", json.dumps({"instances": x_test[i:i + 1].tolist()}))[0])
            except Exception as e:  # noqa: BLE001
                results.append(repr(e))

        threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        time.sleep(0.01)
    finally:
        rc, out, err = s.stop()
    for t in threads:
        t.join()
    check(rc == 0 and "stopped" in out, f"SIGTERM: the server exits 0 after draining ({err[-200:]})")
    check(all(r == 200 or "Connection refused" in str(r) for r in results) and results.count(200) >= 1,
          f"requests in flight at SIGTERM are answered: {results}")


def bad_requests(s, base, x_test):
    row = x_test[0].tolist()
    cases = [
        ("malformed JSON", "POST", base + ":predict", '{"instances": [[1, 2', 400),
        ("wrong shape", "POST", base + ":predict", json.dumps({"instances": [row[:10]]}), 400),
        ("wrong dtype (strings)", "POST", base + ":predict", json.dumps({"instances": [["a"] * 64]}), 400),
        ("NaN", "POST", base + ":predict", '{"instances": [[NaN' + ", 0" * 63 + "]]}", 400),
        ("ragged rows", "POST", base + ":predict", json.dumps({"instances": [row, row[:63]]}), 400),
        ("no instances", "POST", base + ":predict", json.dumps({"rows": [row]}), 400),
        ("unknown signature", "POST", base + ":predict", json.dumps({"signature_name": "nope", "instances": [row]}), 400),
        ("unknown model", "POST", "/v1/models/other:predict", json.dumps({"instances": [row]}), 404),
        ("unknown path", "GET", "/v2/whatever", None, 404),
        ("GET on predict", "GET", base + ":predict", None, 405),
        ("deep nesting", "POST", base + ":predict", '{"instances": ' + "[" * 200 + "]" * 200 + "}", 400),
    ]
    for name, method, path, body, want in cases:
        st, data = s.request(method, path, body)
        err = json.loads(data).get("error", "") if data.startswith(b"{") else ""
        # A message for people: no library exception text ([json.exception.parse_error.101]).
        check(st == want and err and "json.exception" not in err, f"{name}: {st} {err[:100]}")
    # Bytes that are not UTF-8, in the body or the path: a 400 whose JSON is valid (the bytes
    # replaced), and the server lives on (it used to abort serialising the echoed bytes).
    for name, head, body in (("a body of one 0xff byte", f"POST {base}:predict", b"\xff"),
                             ("a 0xff key", f"POST {base}:predict", b'{"instances": [[1]], "\xff": 1}'),
                             ("a 0xff model name", "POST /v1/models/\xff:predict", b"{}")):
        c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        c.sendall(head.encode("latin-1") + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: "
                  + str(len(body)).encode() + b"\r\n\r\n" + body)
        reply = b""
        while True:
            chunk = c.recv(4096)
            if not chunk:
                break
            reply += chunk
        c.close()
        head_, _, payload = reply.partition(b"\r\n\r\n")
        ok = head_.startswith(b"HTTP/1.1 4")
        try:
            json.loads(payload.decode("utf-8"))
        except ValueError:
            ok = False
        check(ok and s.request("GET", base)[0] == 200, f"{name}: a 4xx with valid JSON, the server alive: {reply[:80]!r}")
    # The path's query is ignored and its %-escapes decoded.
    st, data = s.request("POST", base.replace(":", "%3A") + "%3Apredict?trace=1", json.dumps({"instances": [row]}))
    check(st == 200 and b"predictions" in data, f"a query and %3A in the path: {st} {data[:80]!r}")
    # A NUL echoed from the path or a key is shown, not the end of the message.
    st, data = s.request("GET", "/v1/models/a%00bcd")
    err = json.loads(data).get("error", "") if data.startswith(b"{") else ""
    check(st == 404 and "a\\0bcd" in err and "this server serves" in err, f"%00 in a model name: {st} {data[:120]!r}")
    st, data = s.request("POST", base + ":predict", '{"instances": [1], "x\\u0000y": 1}')
    err = json.loads(data).get("error", "") if data.startswith(b"{") else ""
    check(st == 400 and "x\\0y" in err, f"\\u0000 in a key: {st} {data[:120]!r}")
    # A raw NUL byte in the body: not JSON (the parser stopped there and took the rest as absent).
    st, data = s.request("POST", base + ":predict", json.dumps({"instances": [row]}) + "\x00garbage")
    check(st == 400 and b"NUL byte" in data, f"a NUL byte after the JSON body: {st} {data[:120]!r}")
    # A 100 MB body: refused from its Content-Length, before it is sent.
    c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    c.sendall(f"POST {base}:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              f"Content-Length: {100 * 1024 * 1024}\r\n\r\n".encode() + b"[" * 1000)
    reply = c.recv(4096).decode(errors="replace")
    c.close()
    check(reply.startswith("HTTP/1.1 413"), f"a 100 MB body: {reply.splitlines()[0] if reply else 'no reply'}")
    # Slowloris: a request that never completes gets 408 after --request-timeout, and holds no thread.
    slow = []
    for _ in range(20):
        c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        c.sendall(f"POST {base}:predict HTTP/1.1\r\nHost: x\r\nContent-Le".encode())
        slow.append(c)
    st, _ = s.request("GET", base)
    check(st == 200, "the server answers while 20 partial requests hang")
    replies = []
    for c in slow:
        try:
            replies.append(c.recv(4096).decode(errors="replace").split("\r\n")[0])
        except OSError as e:
            replies.append(repr(e))
        c.close()
    check(all(r.startswith("HTTP/1.1 408") for r in replies), f"partial requests get 408 after the timeout: {replies[:2]}")
    st, _ = s.request("GET", base)
    check(st == 200, "the server still serves after the bad requests")


def load_test(s, base, tdl, model, tmp, x_test):
    """64 keep-alive clients, 5 000 requests with distinct inputs; each answer checked against
    the same model called in-process on all 5 000 inputs at once."""
    n, clients = 5000, 64
    rng = np.random.default_rng(1)
    xs = (x_test[np.arange(n) % len(x_test)] + rng.uniform(0, 0.05, (n, 64))).astype(np.float32)
    np.save(os.path.join(tmp, "load_x.npy"), xs)
    script = os.path.join(tmp, "ref.tdl")
    with open(script, "w") as f:
        f.write(f'let r = load_model("{model}").predict(load_npy("{tmp}/load_x.npy"))\n'
                f'save_npy("{tmp}/load_probs.npy", r.probs)\nsave_npy("{tmp}/load_classes.npy", r.classes)\n')
    r = run([tdl, "run", script], env=env_nocache())
    if r.returncode != 0:
        check(False, "the in-process reference of the load test: " + r.stderr[-300:])
        return
    ref_p, ref_c = np.load(os.path.join(tmp, "load_probs.npy")), np.load(os.path.join(tmp, "load_classes.npy"))
    _, before = s.request("GET", "/metrics")
    lat, bad = [], []
    lock = threading.Lock()
    nxt = [0]

    def client():
        c = s.conn()
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= n:
                break
            t0 = time.perf_counter()
            st, body = s.request("POST", base + ":predict", json.dumps({"instances": [xs[i].tolist()]}), conn=c)
            dt = time.perf_counter() - t0
            ok = st == 200
            if ok:
                p = json.loads(body)["predictions"][0]
                ok = p["classes"] == int(ref_c[i]) and np.max(np.abs(np.array(p["probs"]) - ref_p[i])) <= 1e-5
            with lock:
                lat.append(dt)
                if not ok:
                    bad.append((i, st, body[:200]))
        c.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    _, after = s.request("GET", "/metrics")

    def metric(text, name):
        m = re.search(rf"^{name} ([0-9.e+]+)$", text.decode(), re.M)
        return float(m.group(1)) if m else 0.0

    calls = metric(after, "tdl_batch_size_count") - metric(before, "tdl_batch_size_count")
    rows = metric(after, "tdl_batch_size_sum") - metric(before, "tdl_batch_size_sum")
    mean_batch = rows / calls if calls else 0
    lat.sort()
    p50, p99 = lat[len(lat) // 2] * 1e3, lat[int(len(lat) * 0.99)] * 1e3
    print(f"     load test: {n} requests from {clients} clients in {wall:.2f} s ({n / wall:.0f}/s), "
          f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, mean batch {mean_batch:.1f} rows over {calls:.0f} calls")
    check(len(lat) == n and not bad, f"load test: every answer is 200 and its own input's ({len(bad)} wrong: {bad[:2]})")
    check(mean_batch >= 4, f"load test: the mean batch formed is at least 4 ({mean_batch:.1f})")


def wrk_test(s, base, x_test, tmp):
    wrk = shutil.which("wrk")
    if not wrk:
        print("skip wrk: not installed (scripts/install-deps.sh installs it)")
        return
    lua = os.path.join(tmp, "post.lua")
    body = json.dumps({"instances": [x_test[0].tolist()]})
    with open(lua, "w") as f:
        f.write('wrk.method = "POST"\nwrk.body = ' + json.dumps(body) + '\nwrk.headers["Content-Type"] = "application/json"\n')
    r = subprocess.run([wrk, "-t2", "-c256", "-d10s", "-s", lua, f"http://127.0.0.1:{s.port}{base}:predict"],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"(\d+) requests in", r.stdout)
    errors = re.search(r"Socket errors:.*|Non-2xx or 3xx responses: \d+", r.stdout)
    print("     wrk: " + " ".join(line.strip() for line in r.stdout.splitlines() if "Requests/sec" in line or "Latency" in line))
    check(r.returncode == 0 and m and int(m.group(1)) > 0 and not errors,
          f"wrk at 256 connections for 10 s: no errors ({errors.group(0) if errors else 'none'})")


if __name__ == "__main__":
    sys.exit(main())
