#!/usr/bin/env python3
"""The dist module over MPI, as a user runs it (issue 21): `tdl run` alone (one rank, every
collective the identity), `tdl run --np 2` and `--np 3` (Debian's OpenMPI), a `tdl build`
executable under mpirun, mismatched collectives (an error on every rank naming each rank's
line), a rank that leaves early (the others stop after TDL_DIST_TIMEOUT) or fails (the others
are stopped), and the data-parallel digits example.

Usage: test_dist.py --tdl build/tdl
"""
import argparse
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
