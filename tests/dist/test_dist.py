#!/usr/bin/env python3
"""The dist module over MPI, as a user runs it (issue 21): `tdl run` alone (one rank, every
collective the identity), `tdl run --np 2` and `--np 3` (Debian's OpenMPI), a `tdl build`
executable under mpirun, mismatched collectives (an error on every rank naming each rank's
line), a rank that leaves early (the others stop after TDL_DIST_TIMEOUT) or fails (the others
are stopped), and the data-parallel digits example.

Usage: test_dist.py --tdl build/tdl
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def run(cmd, timeout=180, **env):
    e = dict(os.environ, TDL_CACHE_DIR="off", **env)
    t0 = time.time()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=e)
        return r.returncode, r.stdout, r.stderr, time.time() - t0
    except subprocess.TimeoutExpired as x:
        return -1, x.stdout or "", (x.stderr or "") + " (timed out)", time.time() - t0


def lines(text):
    return [ln for ln in text.splitlines() if ln.strip()]


def expected(n):
    """NumPy's reductions of the ranks' inputs of collectives.tdl."""
    import numpy as np
    a32 = [((np.arange(6) * (r + 1) + r).astype(np.float32) / np.float32(4)).reshape(2, 3) for r in range(n)]
    a64 = [((np.arange(6) * (r + 2) - r).astype(np.float64) / 3.0).reshape(2, 3) for r in range(n)]
    ai = [(np.arange(6) * (r + 1) - r * 7).reshape(2, 3) for r in range(n)]
    rows = [np.full((r + 1, 2), r * 10, np.float32) for r in range(n)]
    red = {"sum": np.sum, "max": np.max, "min": np.min}
    out = {}
    for op, f in red.items():
        out[f"allreduce {op} f32"] = f(np.stack(a32), axis=0)
        out[f"allreduce {op} f64"] = f(np.stack(a64), axis=0)
        out[f"allreduce {op} i64"] = f(np.stack(ai), axis=0)
    out["allreduce mean f32"] = np.sum(np.stack(a32), axis=0) / n
    out["allreduce mean f64"] = np.sum(np.stack(a64), axis=0) / n
    out["record a"] = out["allreduce sum f32"]
    out["record b0"] = out["allreduce sum i64"]
    out["record b1"] = out["allreduce sum f64"]
    out["empty"] = np.zeros((0, 3))
    out["broadcast f32"] = a32[n - 1]
    out["broadcast i64"] = ai[0]
    out["allgather f32"] = np.concatenate(rows)
    out["allgather i64"] = np.concatenate(ai)
    return {k: np.asarray(v).ravel() for k, v in out.items()}


def compare(out, n, modes):
    """Every result line of collectives.tdl against NumPy's; a list of problems."""
    import numpy as np
    want = expected(n)
    got = {}
    for ln in out.splitlines():
        m = re.match(r"(eager|graph) (.+?) (\[.*\])$", ln)
        if m:
            got[(m.group(1), m.group(2))] = np.array(json.loads(m.group(3)), dtype=float)
    problems = []
    for mode in modes:
        for k, v in want.items():
            g = got.get((mode, k))
            if g is None:
                problems.append(f"{mode} {k}: missing")
            elif g.shape != v.shape or not np.allclose(g, v, rtol=1e-6, atol=1e-6):
                problems.append(f"{mode} {k}: {g.tolist()} != {v.tolist()}")
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tdl", required=True)
    a = ap.parse_args()
    tdl = os.path.abspath(a.tdl)
    basics = os.path.join(HERE, "basics.tdl")
    if not shutil.which("mpirun"):
        check(False, "mpirun is installed (Debian: openmpi-bin; scripts/install-deps.sh)")
        return 1

    # Alone: one rank, the identity.
    rc, out, err, _ = run([tdl, "run", basics])
    check(rc == 0 and "size 1" in out and "sum [1.0, 1.0, 1.0]" in out and "gather [1, 2] [0.0, 0.0]" in out
          and "shard [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]" in out, f"alone: every collective is the identity {err[-300:]}")

    for n in (2, 3):
        rc, out, err, secs = run([tdl, "run", "--np", str(n), basics])
        ls = lines(out)
        total = sum(range(1, n + 1))

        def vec(v, k=3):
            return "[" + ", ".join([str(float(v))] * k) + "]"

        gathered = []
        for r in range(n):
            gathered += [str(float(r))] * (2 * (r + 1))
        want = [
            f"size {n}",
            f"sum {vec(total)}",
            f"mean {vec(total / n)}",
            f"max {vec(n)} min {vec(1)}",
            # bools reduce with "or" under sum; integers add up
            f"tree {vec(total)} {vec(n, 4)} {sum(range(n))} true",
            f"broadcast {{w: {vec(n)}, k: {n - 1}}}",
            f"gather [{total}, 2] [" + ", ".join(gathered) + "]",
            "graph print from rank 0",
            f"graph {vec(2)}",
        ]
        missing = [w for w in want if w not in ls]
        for w in missing:
            print("     missing:", w)
        ranks = sorted(ln for ln in ls if re.match(r"rank \d+ of", ln))
        shards = sorted(ln for ln in ls if ln.startswith("shard "))
        want_shards = sorted("shard [" + ", ".join(str(i) for i in range(r * 10 // n, (r + 1) * 10 // n)) + "]"
                             for r in range(n))
        ok = (rc == 0 and not missing and ranks == [f"rank {r} of {n}" for r in range(n)] and shards == want_shards
              and len(ls) == len(want) + 2 * n)  # nothing else printed: rank 0 alone prints the rest
        check(ok, f"tdl run --np {n}: collectives, rank-0 printing, all_ranks ({secs:.1f} s) {ls if not ok else ''} "
                  f"{err[-400:]}")

    # Every collective against NumPy, eagerly and in graph fns, on 2 and 4 ranks (oversubscribed).
    coll = os.path.join(HERE, "collectives.tdl")
    for n in (2, 4):
        rc, out, err, secs = run([tdl, "run", "--np", str(n), coll])
        problems = compare(out, n, ("eager", "graph")) if rc == 0 else [err[-400:]]
        check(not problems, f"collectives on {n} ranks equal NumPy's (f32, f64, i64, empty, records; eager and graph fns; "
                            f"{secs:.1f} s) {problems[:3]}")

    # Gradients through allreduce (its adjoint is an allreduce of the same op), eager and graph.
    g = os.path.join(HERE, "grads.tdl")
    rc, out, err, _ = run([tdl, "run", g])
    want1 = {f"rank 0 {m} sum [2.0, 4.0, 6.0] mean [2.0, 4.0, 6.0]" for m in ("eager", "graph")}
    check(rc == 0 and set(lines(out)) == want1, f"gradients through allreduce alone {out} {err[-300:]}")
    rc, out, err, _ = run([tdl, "run", "--np", "2", g])
    want2 = {f"rank {r} {m} sum [{4.0 * (r + 1)}, {8.0 * (r + 1)}, {12.0 * (r + 1)}] mean "
             f"[{2.0 * (r + 1)}, {4.0 * (r + 1)}, {6.0 * (r + 1)}]" for r in range(2) for m in ("eager", "graph")}
    check(rc == 0 and set(lines(out)) == want2, f"gradients through allreduce on 2 ranks (sum: N times, mean: once) "
                                                f"{sorted(set(lines(out)) ^ want2)} {err[-300:]}")

    # Gradients through allreduce max/min, broadcast and allgather, eager and graph, against the
    # same losses in one process over the stacked inputs; alone, on 2 and on 3 ranks.
    g = os.path.join(HERE, "grads_collectives.tdl")
    for n in (1, 2, 3):
        rc, out, err, _ = run([tdl, "run", g] if n == 1 else [tdl, "run", "--np", str(n), g])
        want = {f"rank {r} {m} {k} true" for r in range(n) for m in ("eager", "graph")
                for k in ("max", "min", "broadcast", "allgather")}
        got = {l for l in lines(out) if "gradient" not in l}
        check(rc == 0 and got == want, f"gradients through max/min/broadcast/allgather on {n} rank(s) "
                                       f"{sorted(got ^ want)[:4]} {err[-300:]}")
        if n == 2:
            check({"rank 0 max gradient [0.0, 6.0, 4.5, 0.0]", "rank 1 max gradient [3.0, 0.0, 4.5, 12.0]"} <= set(lines(out)),
                  f"the max gradient is shared by the ranks holding each maximum {out}")

    # A native executable under mpirun.
    tmp = tempfile.mkdtemp(prefix="tdl-dist-")
    try:
        exe = os.path.join(tmp, "basics")
        rc, out, err, _ = run([tdl, "build", basics, "-o", exe])
        check(rc == 0, "tdl build of the dist test " + err[-300:])
        if rc == 0:
            env = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                   "OMPI_MCA_btl_vader_single_copy_mechanism": "none"}
            rc, out, err, _ = run(["mpirun", "-np", "2", "--oversubscribe", exe], **env)
            check(rc == 0 and "size 2" in out and "sum [3.0, 3.0, 3.0]" in out,
                  f"a tdl build executable under mpirun -np 2 {err[-300:]}")
        exe = os.path.join(tmp, "collectives")
        rc, out, err, _ = run([tdl, "build", coll, "-o", exe])
        if rc == 0:
            env = {"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                   "OMPI_MCA_btl_vader_single_copy_mechanism": "none"}
            for n in (2, 4):
                rc, out, err, _ = run(["mpirun", "-np", str(n), "--oversubscribe", exe], **env)
                problems = compare(out, n, ("eager", "graph")) if rc == 0 else [err[-400:]]
                check(not problems, f"the collectives as a tdl build executable under mpirun -np {n} {problems[:3]}")
        else:
            check(False, "tdl build of collectives.tdl " + err[-300:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    # Mismatched collectives: an error on each rank naming every rank's line.
    rc, out, err, secs = run([tdl, "run", "--np", "2", os.path.join(HERE, "mismatch.tdl")])
    check(rc != 0 and "the ranks called different collectives" in err and "mismatch.tdl:4:" in err
          and "mismatch.tdl:6:" in err and "f32[3]" in err and "f32[4]" in err,
          f"mismatched collectives are an error naming each rank's line ({secs:.1f} s): {err.strip()[:300]}")

    # A rank that leaves early: the other stops after the timeout, not never.
    rc, out, err, secs = run([tdl, "run", "--np", "2", os.path.join(HERE, "early_exit.tdl")], timeout=120,
                             TDL_DIST_TIMEOUT="3")
    check(rc != 0 and rc != -1 and "not every rank joined within 3 s" in err and secs < 60,
          f"a rank that leaves early: the others stop in bounded time ({secs:.1f} s): {err.strip()[-300:]}")

    # A rank that fails: the others are stopped.
    rc, out, err, secs = run([tdl, "run", "--np", "2", os.path.join(HERE, "failing_rank.tdl")], timeout=120)
    check(rc != 0 and rc != -1 and "failing_rank.tdl:3:" in err and secs < 60,
          f"a rank that fails stops the others ({secs:.1f} s): {err.strip()[:200]}")

    # A rank killed mid-run (SIGKILL): every process ends, with an error, in under 30 s.
    p = subprocess.Popen([tdl, "run", "--np", "2", os.path.join(HERE, "killed.tdl")], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, cwd=ROOT, env=dict(os.environ, TDL_CACHE_DIR="off"))
    time.sleep(2.0)
    ranks = subprocess.run(["pgrep", "-f", "^[^ ]*/tdl run -- .*killed.tdl"], capture_output=True, text=True).stdout.split()
    t0 = time.time()
    if ranks:
        os.kill(int(ranks[-1]), 9)
    try:
        _, err = p.communicate(timeout=60)
        ended = time.time() - t0
    except subprocess.TimeoutExpired:
        p.kill()
        _, err = p.communicate()
        ended = 999
    left = subprocess.run(["pgrep", "-f", "^[^ ]*/tdl run -- .*killed.tdl"], capture_output=True, text=True).stdout.split()
    check(len(ranks) == 2 and p.returncode != 0 and ended < 30 and not left,
          f"a rank killed mid-run ends every process with an error in under 30 s ({ended:.1f} s, "
          f"{len(ranks)} ranks, exit {p.returncode}): {err.strip()[-160:]}")

    # Data-parallel SGD on 4 ranks (per-rank batch 8) against one process (batch 32): the same
    # weights after each of 50 steps; the script asserts identical weights on every rank.
    import numpy as np
    one, four = tempfile.mkdtemp(prefix="tdl-sgd1-"), tempfile.mkdtemp(prefix="tdl-sgd4-")
    try:
        sgd = os.path.join(HERE, "sgd.tdl")
        rc1, _, err1, _ = run([tdl, "run", sgd, one, "32"])
        rc4, _, err4, secs = run([tdl, "run", "--np", "4", sgd, four, "32"])
        worst, ok = 0.0, rc1 == 0 and rc4 == 0
        for step in range(50) if ok else []:
            for w in ("w1", "w2"):
                a = np.load(os.path.join(one, f"{w}_{step}.npy"))
                b = np.load(os.path.join(four, f"{w}_{step}.npy"))
                worst = max(worst, float(np.max(np.abs(a - b)) / np.max(np.abs(a))))
        check(ok and worst <= 1e-5, f"data-parallel SGD on 4 ranks = one process with 4x the batch, 50 steps "
                                    f"(worst {worst:.2e} of the largest weight; {secs:.1f} s) {err1[-200:]} {err4[-300:]}")
    finally:
        shutil.rmtree(one, ignore_errors=True)
        shutil.rmtree(four, ignore_errors=True)

    # Usage errors.
    rc, out, err, _ = run([tdl, "run", "--np", "0", basics])
    check(rc == 2 and "--np" in err, "--np 0 is a usage error")

    # The data-parallel digits example: the same accuracy as training alone.
    rc, out, err, secs = run([tdl, "run", "--np", "2", "examples/digits_dist.tdl"], timeout=300)
    m = re.search(r"test accuracy: ([0-9.]+)%", out)
    check(rc == 0 and m and float(m.group(1)) > 95 and out.count("test accuracy") == 1,
          f"examples/digits_dist.tdl on 2 ranks ({secs:.1f} s): {out.strip()[-200:]} {err[-300:]}")

    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    print("all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
