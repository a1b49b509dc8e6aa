#!/usr/bin/env python3
"""`tdl build` as a user runs it (issue 7): the executable runs without tdl, LLVM or ANTLR
(its dynamic section names none of them), prints what `tdl run` prints, gets its
arguments, is the same file when built twice, and the options and bad input behave.

Usage: build_tests.py --tdl build/tdl
"""
import argparse
import os
import re
import subprocess
import sys
import signal
import tempfile
import time

FAILS = []
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        FAILS.append(what)


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)


GRAPH_PROGRAM = """\
import nn
graph fn layer(x: f32[B, 4], w: f32[4, 3], b: f32[3]) -> f32[B, 3] {
    return nn.softmax(relu(x @ w + b), axis=1)
}
graph fn count_down(n: i64[]) {
    var k = n
    var steps = 0
    while k > 0 {
        k = k - 2
        steps += 1
    }
    return steps
}
graph fn scale(x: f32[?], s: f32[]) { return x * s }
fn helper(x) { return x + 1.0 }
graph fn untyped(x) { return helper(x) * 2.0 }
let gain = reshape(cast(arange(3), f32) * 0.5 + 1.0, [3])
graph fn uses_pure_let(x: f32[3]) { return x * gain }
let a = args()
let n_args = len(a)
graph fn uses_run_time_let(x: f32[3]) { return x * n_args }
print(len(a), a)
let x = reshape(cast(arange(8), f32) / 8.0, [2, 4])
let w = reshape(cast(arange(12), f32) / 12.0 - 0.5, [4, 3])
print(layer(x, w, [0.1, 0.2, 0.3]))
print(count_down(7), count_down(int(len(a))))
print(scale([1.0, 2.0], 0.5), scale([3.0], cast(2.0, f32)))
print(untyped([1.0, 2.0]))
print(uses_pure_let([1.0, 2.0, 3.0]), uses_run_time_let([1.0, 2.0, 3.0]))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tdl", required=True)
    tdl = os.path.abspath(ap.parse_args().tdl)
    with tempfile.TemporaryDirectory() as d:
        hello = os.path.join(d, "hello.tdl")
        with open(hello, "w") as f:
            f.write('print("hello, world")\n')
        exe = os.path.join(d, "hello")
        b = run([tdl, "build", hello, "-o", exe])
        check(b.returncode == 0 and os.access(exe, os.X_OK), f"build hello (rc {b.returncode}: {b.stderr.strip()})")
        r = run([exe])
        check(r.returncode == 0 and r.stdout == "hello, world\n", "hello runs and prints")

        # Nothing of LLVM or ANTLR in the dynamic section or among the loaded libraries.
        dyn = run(["readelf", "-d", exe]).stdout
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.*?)\]", dyn)
        check(len(needed) > 0, f"readelf shows the NEEDED entries: {needed}")
        bad = [n for n in needed if re.search(r"llvm|antlr|clang|fmt|edit|LLVM", n)]
        check(not bad, f"no LLVM/ANTLR/fmt library needed (needed: {needed})")
        allowed = re.compile(r"^(libc|libm|libstdc\+\+|libgcc_s|libopenblas|ld-linux|libpthread|libdl)(?=[.-])")
        check(all(allowed.match(n) for n in needed), f"only libc/libm/libstdc++/libgcc_s/OpenBLAS are needed: {needed}")
        ldd = run(["ldd", exe]).stdout
        check(not re.search(r"llvm|antlr", ldd, re.I), "ldd lists no LLVM or ANTLR library")
        check("RUNPATH" not in dyn and "RPATH" not in dyn, "no RPATH/RUNPATH into the build tree")

        # Reproducible: the same script built twice gives the same file.
        exe2 = os.path.join(d, "hello2")
        run([tdl, "build", hello, "-o", exe2])
        with open(exe, "rb") as f1, open(exe2, "rb") as f2:
            check(f1.read() == f2.read(), "building twice gives identical executables")

        # A build ended by a signal (kill, Ctrl-C) removes its temporary folder, and the
        # system compiler it ran goes with it; the old output stays as it was.
        private = os.path.join(d, "tmpdir")
        os.mkdir(private)
        many = os.path.join(d, "many.tdl")
        with open(many, "w") as f:
            for i in range(300):
                f.write(f"graph fn f{i}(x: f32[N]) -> f32[N] {{ return sin(x) * {i}.0 + exp(x) }}\n")
            f.write("print(f0([1.0]))\n")
        many_exe = os.path.join(d, "many")
        for delay in (0.0, 0.3):  # as the folder appears, and (usually) while the system compiler links
            p = subprocess.Popen([tdl, "build", many, "-o", many_exe], env=dict(os.environ, TMPDIR=private),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            deadline = time.time() + 60
            while not os.listdir(private) and p.poll() is None and time.time() < deadline:
                time.sleep(0.01)
            time.sleep(delay)
            p.send_signal(signal.SIGTERM)
            p.communicate(timeout=60)
            # A compiler the build started just as the signal came ends on its own (the folder
            # is gone) and removes its own temporary files: given a moment.
            for _ in range(100):
                if not os.listdir(private):
                    break
                time.sleep(0.05)
            check((p.returncode == -signal.SIGTERM and not os.path.exists(many_exe) or p.returncode == 0)
                  and os.listdir(private) == [],
                  f"a build ended by SIGTERM after {delay} s leaves no temporary folder and no output "
                  f"(rc {p.returncode}, left {os.listdir(private)})")

        # A program with graph fns: the same output as `tdl run`, arguments passed through.
        prog = os.path.join(d, "prog.tdl")
        with open(prog, "w") as f:
            f.write(GRAPH_PROGRAM)
        want = run([tdl, "run", prog, "a", "b c"])
        check(want.returncode == 0, f"tdl run prog ({want.stderr.strip()})")
        for opts in ([], ["-O0"], ["-O3"], ["--target-cpu", "generic"]):
            pexe = os.path.join(d, "prog")
            b = run([tdl, "build", prog, "-o", pexe] + opts)
            check(b.returncode == 0, f"build prog {opts} (rc {b.returncode}: {b.stderr.strip()[:300]})")
            if opts == []:
                check("graph fn 'untyped'" in b.stderr and "not compiled ahead of time" in b.stderr,
                      "the build warns by name about the graph fn without annotations")
                check("'layer'" not in b.stderr and "'count_down'" not in b.stderr,
                      "annotated graph fns are compiled without a warning")
                check("'uses_pure_let'" not in b.stderr,
                      "a graph fn reading a pure top-level let is compiled ahead of time (the let is evaluated at build time)")
                check("'uses_run_time_let'" in b.stderr and "top-level value 'n_args'" in b.stderr,
                      "a graph fn reading a let known only at run time is named in a warning")
            r = run([pexe, "a", "b c"], env=dict(os.environ, TDL_TRACE_REPORT="1"))
            check(r.returncode == 0 and r.stdout == want.stdout, f"prog {opts} prints what tdl run prints")
            report = r.stderr
            served_natively = re.search(r"graph fn layer: 1 trace\n  #1 \([^)]*\): 1 call served;", report)
            check(bool(served_natively), f"prog {opts}: layer ran the code compiled ahead of time")
            check(re.search(r"graph fn untyped: 1 trace\n  #1 .* served in the VM", report) is not None,
                  f"prog {opts}: untyped ran in the VM")
            check(re.search(r"graph fn uses_pure_let: 1 trace\n  #1 \([^)]*\): 1 call served;", report) is not None,
                  f"prog {opts}: uses_pure_let ran the code compiled ahead of time")
            check(re.search(r"graph fn scale: 2 traces", report) is None or "scale: 2 traces\n  #1" in report,
                  f"prog {opts}: scale reported")

        # --emit-llvm and --emit-obj write the pieces.
        ll = os.path.join(d, "prog.ll")
        b = run([tdl, "build", prog, "--emit-llvm", "-o", ll])
        text = open(ll).read() if os.path.exists(ll) else ""
        check(b.returncode == 0 and "define" in text and "tdl_aot_0" in text, "--emit-llvm writes the LLVM IR")
        obj = os.path.join(d, "prog.o")
        b = run([tdl, "build", prog, "--emit-obj", "-o", obj])
        head = open(obj, "rb").read(18) if os.path.exists(obj) else b""
        check(b.returncode == 0 and head[:4] == b"\x7fELF" and head[16] == 1, "--emit-obj writes a relocatable ELF object")
        syms = run(["nm", obj]).stdout
        check("tdl_program_image" in syms and "tdl_aot_entries" in syms, "the object holds the image and the table")

        # Run-time errors in the executable read as in tdl run.
        bad = os.path.join(d, "oops.tdl")
        with open(bad, "w") as f:
            f.write("graph fn get(x: f32[?], i: i64[]) { return x[i] }\nprint(get([1.0, 2.0], 1))\nprint(get([1.0, 2.0], 5))\n")
        want = run([tdl, "run", bad])
        bexe = os.path.join(d, "oops")
        run([tdl, "build", bad, "-o", bexe])
        r = run([bexe])
        check(r.returncode == 1 and r.stdout == want.stdout and r.stderr == want.stderr,
              f"a run-time error reads the same ({r.stderr.strip()[:200]!r})")

        # Bad input: a clear error and exit status 1 (2 for usage errors), never a crash.
        syn = os.path.join(d, "syntax.tdl")
        with open(syn, "w") as f:
            f.write("let x = (1 +\nprint(x)\n")
        b = run([tdl, "build", syn, "-o", os.path.join(d, "syn")])
        check(b.returncode == 1 and re.search(r"syntax\.tdl:\d+:\d+: error:", b.stderr) is not None,
              "a syntax error fails the build with file:line:col")
        check(not os.path.exists(os.path.join(d, "syn")), "no executable after a failed build")
        b = run([tdl, "build", os.path.join(d, "missing.tdl"), "-o", os.path.join(d, "m")])
        check(b.returncode == 1 and "error" in b.stderr, "a missing file fails the build")
        b = run([tdl, "build", hello, "-o", os.path.join(d, "x"), "-O7"])
        check(b.returncode == 2, f"-O7 is a usage error (rc {b.returncode})")
        b = run([tdl, "build", hello, "-o", os.path.join(d, "no", "such", "dir", "x")])
        check(b.returncode == 1 and "error" in b.stderr, "an unwritable output fails with an error")
        b = run([tdl, "build", prog, "-o", os.path.join(d, "x"), "--target-cpu", "no-such-cpu"])
        check(b.returncode == 1 and "no-such-cpu" in b.stderr and "LLVM ERROR" not in b.stderr,
              f"an unknown CPU is an error, not a crash (rc {b.returncode})")
        # --lib: a shared library and a C header, used by the example C program.
        src = os.path.join(ROOT, "examples", "c_api")
        lib = os.path.join(d, "libclassifier.so")
        b = run([tdl, "build", "--lib", os.path.join(src, "classifier.tdl"), "-o", lib])
        check(b.returncode == 0 and os.path.exists(lib) and os.path.exists(os.path.join(d, "classifier.h")),
              f"build --lib writes the library and classifier.h ({b.stderr.strip()[:300]})")
        dyn = run(["readelf", "-d", lib]).stdout
        check(not re.search(r"llvm|antlr", dyn, re.I), "the library needs no LLVM or ANTLR")
        exports = run(["nm", "-D", "--defined-only", lib]).stdout
        check("classifier_sgd_step" in exports and "classifier_predict" in exports, "the C functions are exported")
        check("_ZN3tdl" not in exports, "the runtime's C++ symbols are not exported")
        cc = run(["cc", "-O2", "-Wall", "-Werror", os.path.join(src, "main.c"), "-I", d, "-L", d, "-lclassifier",
                  "-Wl,-rpath," + d, "-o", os.path.join(d, "main")])
        check(cc.returncode == 0, f"the example C program compiles against the header ({cc.stderr.strip()[:300]})")
        r = run([os.path.join(d, "main")])
        want = open(os.path.join(src, "expected.txt")).read()
        check(r.returncode == 0 and r.stdout == want, f"the C program prints expected.txt ({r.stdout!r} {r.stderr[-300:]!r})")
        # NULL for a tensor or for out: 1 and a message, not a crash.
        with open(os.path.join(d, "nulls.c"), "w") as f:
            f.write('#include <stdio.h>\n#include "classifier.h"\nint main(void) {\n'
                    '  float xs[4] = {0}; int64_t shape[2] = {1, 4}; tdl_tensor x = {xs, TDL_F32, 2, shape}, out;\n'
                    '  int a = classifier_predict(NULL, &out); printf("%d %s\\n", a, classifier_last_error());\n'
                    '  int b = classifier_predict(&x, NULL); printf("%d %s\\n", b, classifier_last_error());\n'
                    '  return 0;\n}\n')
        cc = run(["cc", "-O2", "-Wall", os.path.join(d, "nulls.c"), "-I", d, "-L", d, "-lclassifier",
                  "-Wl,-rpath," + d, "-o", os.path.join(d, "nulls")])
        r = run([os.path.join(d, "nulls")])
        lines = r.stdout.splitlines()[-2:]  # after what the script prints at init
        check(cc.returncode == 0 and r.returncode == 0 and len(lines) == 2 and lines[0].startswith("1 ")
              and "NULL" in lines[0] and lines[1].startswith("1 ") and "NULL" in lines[1],
              f"NULL tensors and outputs are errors with a message ({r.returncode} {r.stdout!r} {cc.stderr[-200:]!r})")

        # load_model in an executable (SPEC §12): a model exported as shared objects for this
        # machine (--target) runs as under `tdl run`; one holding relocatable objects, which
        # only tdl links with LLVM, is a clear error that names the flag.
        with open(os.path.join(d, "mexp.tdl"), "w") as f:
            f.write("import nn\nlet W = reshape(cast(arange(12), f32) / 12.0 - 0.5, [4, 3])\n"
                    "graph fn predict(x: f32[B, 4]) -> f32[B, 3] { return nn.softmax(x @ W) }\n")
        triple = f"{os.uname().machine}-linux-gnu"
        e1 = run([tdl, "export", os.path.join(d, "mexp.tdl"), "--fn", "predict", "-o", os.path.join(d, "so.tdlm"),
                  "--target", triple])
        e2 = run([tdl, "export", os.path.join(d, "mexp.tdl"), "--fn", "predict", "-o", os.path.join(d, "obj.tdlm")])
        check(e1.returncode == 0 and e2.returncode == 0, f"export the model twice ({e1.stderr.strip()[:200]} {e2.stderr.strip()[:200]})")
        use = ('let m = load_model(args()[0])\nprint(m.predict([[1.0, 2.0, 3.0, 4.0], [0.5, 0.0, -1.0, 2.0]]))\n'
               'print(m)\n')
        with open(os.path.join(d, "use_model.tdl"), "w") as f:
            f.write(use)
        uexe = os.path.join(d, "use_model")
        b = run([tdl, "build", os.path.join(d, "use_model.tdl"), "-o", uexe])
        want = run([tdl, "run", os.path.join(d, "use_model.tdl"), os.path.join(d, "so.tdlm")])
        r = run([uexe, os.path.join(d, "so.tdlm")])
        check(b.returncode == 0 and want.returncode == 0 and r.returncode == 0 and r.stdout == want.stdout
              and "[[" in r.stdout,
              f"an executable loads a model exported with --target and prints what tdl run prints "
              f"({b.stderr.strip()[:200]} {r.stderr.strip()[:300]} {r.stdout!r} {want.stdout!r})")
        r = run([uexe, os.path.join(d, "obj.tdlm")])
        check(r.returncode == 1 and "use_model.tdl:1:9: error: cannot load" in r.stderr
              and f"--target {os.uname().machine}" in r.stderr,
              f"an executable names --target for a model of relocatable objects ({r.returncode} {r.stderr.strip()[:300]})")

    print(f"{len(FAILS)} failed")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
