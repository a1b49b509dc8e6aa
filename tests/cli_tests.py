#!/usr/bin/env python3
"""The `tdl` command line as a user meets it: exit statuses (SPEC §9: 0 ok,
1 script error, 2 usage error), help and version, JSON diagnostics, bad files."""
import argparse
import json
import os
import subprocess
import time
import sys
import tempfile

from checklib import expect, summary


def run(tdl, *args, cwd=None, stdin=None, env=None):
    return subprocess.run([tdl, *args], capture_output=True, text=True, errors="replace", timeout=60, cwd=cwd,
                          input=stdin, env=env)


def compile_cache(tdl, d):
    """The compile cache on disk (codegen/DiskCache.h): a later process loads a graph fn
    compiled by an earlier one instead of running LLVM, with the same results; a damaged
    entry is compiled again; TDL_CACHE_DIR=off and an unusable directory leave no trace."""
    import glob
    import time
    prog = os.path.join(d, "cached.tdl")
    with open(prog, "w") as f:
        f.write("graph fn f(x: f32[?], k: f32) {\n  var s = x\n  for i in range(3) { s = tanh(s * k) + x }\n"
                "  return (s, sum(s))\n}\nprint(f([0.5, -1.0, 2.0], 0.5))\nprint(f([1.0, 2.0], 2.0))\n")
    cache = os.path.join(d, "cache")
    env = dict(os.environ, TDL_CACHE_DIR=cache)
    first = run(tdl, "run", "--trace-report", prog, env=env)
    expect("compile cache: a first run compiles with LLVM",
           first.returncode == 0 and "llvm" in first.stderr and "compile cache" not in first.stderr, first)
    deadline = time.time() + 60  # the shared object is linked in the background
    while time.time() < deadline and not glob.glob(os.path.join(cache, "*.so")):
        time.sleep(0.1)
    time.sleep(0.5)
    entries = sorted(glob.glob(os.path.join(cache, "*.so")))
    expect("compile cache: one entry (a shared object and its table) per compiled signature",
           len(entries) == 1 and all(os.path.exists(e[:-3] + ".table") for e in entries), first)
    second = run(tdl, "run", "--trace-report", prog, env=env)
    expect("compile cache: a later run loads the graph fn instead of compiling it, same output",
           second.returncode == 0 and second.stdout == first.stdout and "loaded from the compile cache" in second.stderr
           and "llvm" not in second.stderr, second)
    eager = run(tdl, "run", "--eager", prog)
    expect("compile cache: the cached code agrees with eager mode", eager.stdout == second.stdout, eager)
    for e in entries:
        with open(e, "wb") as f:
            f.write(b"not an ELF file")
    third = run(tdl, "run", "--trace-report", prog, env=env)
    expect("compile cache: a damaged entry is compiled again, same output",
           third.returncode == 0 and third.stdout == first.stdout and "llvm" in third.stderr, third)
    # Bounded: a process that stores an entry first drops the least recently used beyond
    # 4096 and link temporaries older than an hour.
    bounded = os.path.join(d, "cache-bounded")
    os.makedirs(bounded, mode=0o700)
    old = time.time() - 7200
    for i in range(4100):
        p = os.path.join(bounded, f"{i:032x}.so")
        open(p, "w").close()
        os.utime(p, (old + i, old + i))
    stale = os.path.join(bounded, "f" * 32 + ".123.0.o")
    open(stale, "w").close()
    os.utime(stale, (old, old))
    r = run(tdl, "run", prog, env=dict(os.environ, TDL_CACHE_DIR=bounded))
    names = os.listdir(bounded)
    expect("compile cache: bounded (least recently used entries and stale temporaries dropped)",
           r.returncode == 0 and not os.path.exists(stale) and not os.path.exists(os.path.join(bounded, f"{0:032x}.so"))
           and os.path.exists(os.path.join(bounded, f"{4099:032x}.so"))
           and len([n for n in names if n.endswith(".so") and len(n) == 35]) <= 4097, r)
    off = os.path.join(d, "cache-off")
    r = run(tdl, "run", prog, env=dict(os.environ, TDL_CACHE_DIR="off", HOME=off, XDG_CACHE_HOME=off))
    expect("compile cache: TDL_CACHE_DIR=off writes nothing", r.returncode == 0 and not os.path.exists(off), r)
    r = run(tdl, "run", prog, env=dict(os.environ, TDL_CACHE_DIR=os.path.join(good_file(d), "sub")))
    expect("compile cache: an unusable directory (under a file) is ignored", r.returncode == 0 and r.stdout == first.stdout, r)


def good_file(d):
    return os.path.join(d, "good.tdl")


def script(d, name, text):
    """Writes a .tdl program into folder d; returns its path."""
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tdl", required=True)
    tdl = os.path.abspath(ap.parse_args().tdl)
    d = tempfile.mkdtemp()
    good = os.path.join(d, "good.tdl")
    with open(good, "w") as f:
        f.write("let x = 1\nprint(x + 1)\n")
    bad = os.path.join(d, "bad.tdl")
    with open(bad, "w") as f:
        f.write("let x = 1\nprint(y)\nx = 3\n")

    r = run(tdl, "--version")
    expect("--version prints the version and the BLAS in use, exit 0",
           r.returncode == 0 and r.stdout.startswith("tdl ") and "\nBLAS: " in r.stdout and "core " in r.stdout, r)
    r = run(tdl, "help")
    expect("help prints usage, exit 0", r.returncode == 0 and "tdl run FILE" in r.stdout, r)
    r = run(tdl, "builtins")
    expect("builtins lists each builtin with its parameters",
           r.returncode == 0 and "leaky_relu(x, slope=…)\n" in r.stdout and "sum(x, axis=…, keepdims=…)\n" in r.stdout
           and "print(...)\n" in r.stdout and "\nf32(" not in r.stdout, r)
    r = run(tdl, "builtins", "--json")
    try:
        table = {b["name"]: b for b in json.loads(r.stdout)}
    except ValueError:
        table = {}
    expect("builtins --json: parameters, required count, differentiability",
           r.returncode == 0 and table.get("elu", {}).get("params") == ["x", "alpha"] and table["elu"]["required"] == 1
           and table["elu"]["differentiable"] and not table.get("argmax", {}).get("differentiable", True)
           and table.get("print", {}).get("params", 0) is None, r)
    r = run(tdl, "builtins", "--bogus")
    expect("builtins with an unknown option: exit 2", r.returncode == 2, r)
    r = run(tdl)
    expect("no arguments: usage, exit 2", r.returncode == 2, r)
    r = run(tdl, "frobnicate")
    expect("unknown command: exit 2, named", r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr, r)
    r = run(tdl, "--bogus")
    expect("unknown option: exit 2, named", r.returncode == 2 and "unknown option '--bogus'" in r.stderr, r)
    # Every command answers --help with its own options, exit 0.
    for args, words in ((["run", "--help"], "--trace-report"), (["serve", "MODEL", "-h"], "--max-batch"),
                        (["check", "--help"], "Usage: tdl check FILE"), (["jupyter", "install", "--help"], "--prefix"),
                        (["build", "x.tdl", "--help"], "--target")):
        r = run(tdl, *args)
        expect(f"tdl {' '.join(args)}: its help, exit 0", r.returncode == 0 and words in r.stdout, r)
    r = run(tdl, "check")
    expect("check without FILE: exit 2", r.returncode == 2, r)
    r = run(tdl, "check", good)
    expect("check of a valid file: exit 0, silent", r.returncode == 0 and r.stdout == "" and r.stderr == "", r)
    r = run(tdl, "check", bad)
    expect("check of a bad file: exit 1, every diagnostic",
           r.returncode == 1 and "bad.tdl:2:7: error: undefined name 'y'" in r.stderr
           and "bad.tdl:3:1: error: cannot assign to 'x'" in r.stderr, r)
    r = run(tdl, "check", os.path.join(d, "missing.tdl"))
    expect("check of a missing file: exit 1, clear message",
           r.returncode == 1 and "missing.tdl: error: cannot read" in r.stderr, r)
    r = run(tdl, "check", d)
    expect("check of a directory: exit 1", r.returncode == 1 and "is a directory" in r.stderr, r)
    r = run(tdl, "check", "--diagnostics=json", bad)
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    try:
        objs = [json.loads(l) for l in lines]
        okjson = len(objs) == 2 and objs[0]["level"] == "error" and objs[0]["spans"][0]["line_start"] == 2 \
            and objs[0]["spans"][0]["column_start"] == 7 and "undefined name 'y'" in objs[0]["message"]
    except ValueError:
        okjson = False
    expect("--diagnostics=json: one JSON object per diagnostic and nothing else", okjson and r.returncode == 1, r)
    # A global option after the file of a command other than run (whose script's arguments
    # follow its file) is the option, as before the file.
    for cmd in (["check", bad, "--diagnostics=json"], ["build", bad, "-o", os.path.join(d, "badexe"), "--diagnostics=json"]):
        r = run(tdl, *cmd)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        try:
            okjson = len(lines) >= 1 and all(json.loads(l)["level"] in ("error", "warning", "note") for l in lines)
        except (ValueError, KeyError, TypeError):
            okjson = False
        expect(f"tdl {cmd[0]} FILE ... --diagnostics=json: JSON diagnostics, exit 1", okjson and r.returncode == 1, r)
    for name, end in (("cr.tdl", "\r"), ("crlf.tdl", "\r\n")):
        p = os.path.join(d, name)
        with open(p, "w", newline="") as f:
            f.write(end.join(["let a = 1", "let b = nowhere", "print(a)", ""]))
        r = run(tdl, "check", p)
        expect(f"line ends {end!r}: the error's line and column count them as line ends",
               r.returncode == 1 and f"{name}:2:9: error: undefined name 'nowhere'" in r.stderr
               and "\nlet b = nowhere\n" in r.stderr, r)
    # The caret stands under its character as a terminal shows the line: wide (CJK) text
    # before it takes two cells a character.
    cjk = script(d, "cjk.tdl", 'let s = "日本語"; print(s, nowhere_cjk)\n')
    r = run(tdl, "check", cjk)
    lines = r.stderr.splitlines()
    expect("the caret after wide (CJK) text stands under the name",
           len(lines) >= 3 and lines[2] == " " * (len('let s = "";') + 6 + len(" print(s, ")) + "^" + "~" * 10, r)
    r = run(tdl, "--version", "--bogus")
    expect("--version with an argument: a usage error (exit 2)", r.returncode == 2 and "--bogus" in r.stderr, r)
    # Output that cannot be written (a full disk) is an error, not a silent success.
    if os.path.exists("/dev/full"):
        big = script(d, "big_out.tdl", "print(arange(100000))\n")
        for cmd in ([tdl, "run", big], [tdl, "builtins", "--json"]):
            with open("/dev/full", "w") as full:
                r = subprocess.run(cmd, stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
            expect(f"{' '.join(cmd[1:2])} > /dev/full: exit 1, 'cannot write to standard output'",
                   r.returncode == 1 and "cannot write to standard output" in r.stderr and "internal" not in r.stderr, r)
    # tdl jupyter kernel with a bad connection file: the field named, no JSON library text.
    good_conn = {"transport": "tcp", "ip": "999.0.0.1", "key": "k", "signature_scheme": "hmac-sha256",
                 "shell_port": 0, "iopub_port": 0, "stdin_port": 0, "control_port": 0, "hb_port": 0}
    for name, content, words in (("c1.json", "{}", '"transport" must be a string'),
                                 ("c2.json", "nope", "not a JSON object"),
                                 ("c3.json", json.dumps(dict(good_conn, shell_port="1")), '"shell_port" must be a port'),
                                 ("c4.json", json.dumps(good_conn), "cannot serve on tcp://999.0.0.1")):
        p = script(d, name, content)
        r = run(tdl, "jupyter", "kernel", "-f", p)
        expect(f"jupyter kernel with a bad connection file ({words})",
               r.returncode == 1 and words in r.stderr and "exception" not in r.stderr, r)
    r = run(tdl, "check", "--diagnostics=json", os.path.join(d, "missing.tdl"))
    try:
        o = json.loads(r.stderr)
        okjson = o["spans"] == [] and "cannot read" in o["message"]
    except ValueError:
        okjson = False
    expect("--diagnostics=json of a file that cannot be read: no spans (no line 0)", okjson and r.returncode == 1, r)
    r = run(tdl, "--diagnostics=xml", "check", good)
    expect("bad --diagnostics value: exit 2", r.returncode == 2, r)
    r = run(tdl, "emit", good, "--stage", "ast")
    expect("emit --stage ast prints the AST with positions",
           r.returncode == 0 and "Let x @1:1" in r.stdout and "Call @2:1" in r.stdout, r)
    r = run(tdl, "emit", good, "--stage", "bogus")
    expect("emit with an unknown stage: exit 2", r.returncode == 2, r)
    # --args: a size, a name or ?; a bad one is a usage error (exit 2), a huge one needs no memory.
    em = os.path.join(d, "emit_args.tdl")
    with open(em, "w") as f:
        f.write("graph fn g(x) { return x * 2.0 }\n")
    for sig in ("f32[99999999999999999999]", "f32[-3]", "f32[3", "f32[2x]"):
        r = run(tdl, "emit", em, "--fn", "g", "--args", sig, "--stage", "ir")
        expect(f"emit --args {sig}: a usage error naming it", r.returncode == 2 and "tdl: error: bad" in r.stderr
               and sig.split("[")[1].rstrip("]") in r.stderr and "internal" not in r.stderr, r)
    r = run(tdl, "emit", em, "--fn", "g", "--args", "f32[1000000000000, N]", "--stage", "llvm")
    expect("emit --args with a size no machine holds: the code, no allocation",
           r.returncode == 0 and "define" in r.stdout, r)
    ann = os.path.join(d, "emit_ann.tdl")
    with open(ann, "w") as f:
        f.write("graph fn predict(x: f32[N, 784], w: f32[784, 10]) { return x @ w }\n")
    r = run(tdl, "emit", ann, "--fn", "predict", "--args", "f32[4, 783], f32[784, 10]", "--stage", "opt")
    expect("emit --args against the annotations: the annotation's error at the parameter, exit 1, no code",
           r.returncode == 1 and r.stdout == "" and
           "emit_ann.tdl:1:10: error: argument 'x' of fn 'predict' must be f32[N, 784], got f32[4, 783]" in r.stderr, r)
    r = run(tdl, "run", "--no-such-flag", good)
    expect("run with an unknown option: exit 2", r.returncode == 2, r)
    r = run(tdl, "run")
    expect("run without FILE: exit 2", r.returncode == 2, r)
    r = run(tdl, "run", bad)
    expect("run of a file with static errors: exit 1 with the diagnostics",
           r.returncode == 1 and "undefined name 'y'" in r.stderr, r)
    r = run(tdl, "repl", stdin='let x = [1.0, 2.0]\nx * 2.0\nfn f(a) {\n  return a + 1\n}\nf(41)\n'
                                  'undefined_name\nprint("still here")\nlet s = "a"\ns\n')
    expect("repl through a pipe: values of expressions, multi-line input, errors do not end the session",
           r.returncode == 0 and r.stdout.splitlines() == ["[2.0, 4.0]", "42", "still here", "a"]
           and "undefined name 'undefined_name'" in r.stderr, r)
    # A fn, graph fn or type alias defined again in a session replaces the earlier one (a
    # notebook cell run again; Python's def): callers see the new one.
    r = run(tdl, "repl", stdin='fn h(x) { return x + 1 }\nfn g(x) { return h(x) * 10 }\nprint(h(1), g(1))\n'
                                  'fn h(x) { return x + 2 }\nprint(h(1), g(1))\ngraph fn k(x) { return x * 2.0 }\n'
                                  'print(k(1.0))\ngraph fn k(x) { return x * 3.0 }\nprint(k(1.0))\ntype L = f32[2]\n'
                                  'type L = f32[3]\nfn b(x: L) { return x.shape }\nprint(b([1.0, 2.0, 3.0]))\n')
    expect("repl: fns, graph fns and types defined again replace the earlier ones",
           r.returncode == 0 and r.stdout.splitlines() == ["2 20", "3 30", "2.0", "3.0", "[3]"] and r.stderr == "", r)
    # A fn may call one a later input defines (Python's late binding: names inside fns are
    # looked up when they run); a name still undefined then is a run-time error naming it.
    r = run(tdl, "repl", stdin='fn f() { return g() }\nfn g() { return 5 }\nf()\nfn h() { return nope(1) }\n'
                                  'h()\nprint("after")\nundefined_at_top\n')
    expect("repl: a fn calls one defined in a later input; undefined names are errors when they run",
           r.returncode == 0 and r.stdout.splitlines() == ["5", "after"] and "'nope' is used before its definition" in r.stderr
           and "<repl>:7:1: error: undefined name 'undefined_at_top'" in r.stderr, r)
    # Issue 19: later errors keep the session's line numbers after a syntax error; :type,
    # :time, :help NAME, help(f) with a doc comment and defaults, unknown commands, :quit.
    r = run(tdl, "repl", stdin='let a = 1\nlet b = )\nprint(c)\n:type [1.0, 2.0] * a\n:time sum(ones([4]))\n'
                                  ':help nn.softmax\n# Doubles x.\nfn twice(x, k = 2) { return x * k }\nhelp(twice)\n'
                                  ':type (1,\n  "two")\n:bogus\n:quit\nprint("not reached")\n')
    out = r.stdout.splitlines()
    expect("repl: an error after a syntax error names its own line (3)",
           "<repl>:2:9: error: syntax error" in r.stderr and "<repl>:3:7: error: undefined name 'c'" in r.stderr, r)
    expect("repl: :type prints the type only, :time the value and the time",
           out[:2] == ["f32[2]", "4.0"] and out[2].startswith("time: ") and out[2].endswith(" ms"), r)
    expect("repl: :help NAME and help(f) print reference entries (defaults, doc comment)",
           "nn.softmax(x, axis=-1)" in out and "twice(x, k=2)" in out and "    Doubles x." in out, r)
    expect("repl: a command's expression goes on over lines while a bracket is open", "tuple" in out, r)
    expect("repl: an unknown command is an error that names :help; :quit ends the session",
           "unknown command ':bogus'" in r.stderr and "not reached" not in r.stdout and r.returncode == 0, r)
    # The same under a pseudo-terminal: prompts, line editing's history file.
    import pty
    import select
    home = tempfile.mkdtemp()
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["HOME"] = home
        os.environ.pop("TDL_HISTORY", None)
        os.environ["LC_ALL"] = "C"  # typed UTF-8 must work in the C locale too
        os.execv(tdl, [tdl, "repl"])
    seen = b""
    def pty_read(until, timeout=20, since=0):
        nonlocal seen
        t0 = time.time()
        while until not in seen[since:] and time.time() - t0 < timeout:
            rl, _, _ = select.select([fd], [], [], 0.2)
            if rl:
                try:
                    seen += os.read(fd, 4096)
                except OSError:
                    break
        return until in seen[since:]
    # Each step: what is typed, a pause after it (s), and what must then show (in the output
    # after it was typed: a busy machine may echo and answer late).
    def steps(*seq):
        good = True
        for data, pause, until in seq:
            since = len(seen)
            os.write(fd, data)
            time.sleep(pause)
            good = good and (until is None or pty_read(until, since=since))
        return good
    ok = pty_read(b">>> ")
    ok = ok and steps((b":type ones([2, 3])\n", 0, b"f32[2, 3]"), (b"help(sum)\n", 0, b"keepdims=false)"),
                      # Ctrl-C stops an endless loop; the session and its names go on.
                      (b"var spins = 0\nwhile true { spins += 1 }\n", 0.5, None), (b"\x03", 0, b"error: interrupted"),
                      (b"print(spins > 0, 1)\n", 0, b"true 1\r\n>>> "),
                      # Ctrl-C at the prompt drops the line being typed, and an unfinished
                      # input; editing goes on.
                      (b"let zz = 1", 0.3, None), (b"\x03", 0, b"^C\r\n>>> "), (b"let q = [1,\n", 0, b"... "),
                      (b"\x03", 0, b"^C\r\n>>> "), (b"print(spins > 0, 40 + 2)\n", 0, b"true 42"),
                      # Text typed in UTF-8 (whatever the locale) is kept, and edited by
                      # character: two left arrows, then a character inserted.
                      ("print(\"é→😀\", len(\"é→😀\"))\n".encode(), 0, "é→😀 3\r\n>>> ".encode()),
                      ("let s = \"ab\"\x1b[D\x1b[Dé\nprint(s)\n".encode(), 0, "aéb\r\n>>> ".encode()))
    os.write(fd, b":quit\n")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    hist = os.path.join(home, ".tdl_history")
    expect("repl under a terminal: prompts, :type and help, Ctrl-C stops a loop and drops a line being typed, "
           "UTF-8 typed and edited, a history file in $HOME",
           ok and os.WEXITSTATUS(status) == 0 and os.path.exists(hist) and "help(sum)" in open(hist, errors="replace").read(),
           seen.decode("utf-8", "replace")[-400:])
    # A print inside a progress loop on a terminal: the bar's line is cleared first and the
    # bar drawn again after the text (tqdm.write's way), so the text gets a line of its own.
    pg = os.path.join(d, "progress_print.tdl")
    with open(pg, "w") as f:
        f.write('for i in progress(range(3), desc="t") { print(f"step {i}") }\nprint("done")\n')
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(tdl, [tdl, "run", pg])
    seen = b""
    ok = pty_read(b"done")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    expect("progress and print share a terminal: each printed line starts on a cleared line",
           ok and os.WEXITSTATUS(status) == 0 and all(b"\r\x1b[Kstep %d\r\n" % i in seen for i in range(3))
           and b"3/3" in seen, seen)
    # A long elementwise chain becomes several fused loops of at most 256 body ops (fusion and
    # compile time linear in its length), with eager's result.
    chain = os.path.join(d, "long_chain.tdl")
    with open(chain, "w") as f:
        f.write("graph fn g(x: f32[4]) {\n  var y = x\n" + "  y = y * 1.0001 + 0.5\n" * 600
                + "  return sum(y)\n}\nprint(g([1.0, 2.0, 3.0, 4.0]))\n")
    r = run(tdl, "emit", chain, "--fn", "g", "--stage", "opt")
    bodies = r.stdout.count("= fused(")
    g, e = run(tdl, "run", chain), run(tdl, "run", "--eager", chain)
    expect("a 1200-op chain: several fused loops (at most 256 ops each), same result as eager",
           r.returncode == 0 and bodies >= 4 and g.returncode == 0 and e.returncode == 0
           and abs(float(g.stdout) - float(e.stdout)) <= 1e-5 * abs(float(e.stdout)), g if bodies >= 4 else r)
    # --trace-report names the parameters and shows records and tuples with their fields.
    tr = os.path.join(d, "trace_names.tdl")
    with open(tr, "w") as f:
        f.write("graph fn step(p: {w: f32[4, 2], b: f32[2]}, x: f32[B, 4], cfg: (f32[], i64[])) {\n"
                "  return sum(x @ p.w + p.b) * cfg[0]\n}\n"
                "print(step({w: ones([4, 2]), b: zeros([2])}, ones([3, 4]), (0.5, 2)))\n")
    r = run(tdl, "run", "--trace-report", tr)
    expect("--trace-report shows parameters by name, records with their fields, tuples",
           r.returncode == 0 and "#1 (p: {w: f32[4, 2], b: f32[2]}, x: f32[B, 4], cfg: (f32[], i64[])): 1 call served" in r.stderr, r)
    # rand/randn/zeros of x.shape with a symbolic dim (nn.dropout's mask) trace once for every
    # batch size, its known dims kept known.
    rs = script(d, "rand_shape.tdl",
                "import nn\ngraph fn f(x: f32[B, 4]) { return (rand(x.shape), randn(x.shape), zeros(x.shape),"
                " nn.dropout(x, 0.5)) }\n"
                "seed(1)\nfor b in [3, 5, 7] { let (u, n, z, d) = f(ones([b, 4]))\n"
                "    print(u.shape, n.shape, z.shape, d.shape, all(u >= 0.0) and all(u < 1.0)) }\n")
    r = run(tdl, "run", "--trace-report", rs)
    expect("rand(x.shape) with a symbolic dim: one trace for every size",
           r.returncode == 0 and r.stdout == "".join(f"[{b}, 4] [{b}, 4] [{b}, 4] [{b}, 4] true\n" for b in (3, 5, 7))
           and "graph fn f: 1 trace\n  #1 (x: f32[B, 4]): 3 calls served" in r.stderr, r)
    # An import cycle names every module on it, in the order they import each other.
    for name, body in (("cyc_a.tdl", 'import "cyc_b.tdl" as b\n'), ("cyc_b.tdl", 'import "cyc_c.tdl" as c\n'),
                       ("cyc_c.tdl", 'import "cyc_a.tdl" as a\n')):
        script(d, name, body)
    r = run(tdl, "run", os.path.join(d, "cyc_a.tdl"))
    expect("an import cycle names its modules in order",
           r.returncode == 1 and "cyc_c.tdl:1:8: error: import cycle: '" in r.stderr
           and "cyc_a.tdl' imports 'cyc_b.tdl' imports 'cyc_c.tdl' imports 'cyc_a.tdl'" in r.stderr, r)
    # A call whose compiled code stops with an error is not counted as served.
    fl = script(d, "trace_failed.tdl", "graph fn at(x: f32[?], i: i64) { return x[i] }\n"
                "print(at(ones([3]), 1))\nprint(at(ones([3]), 2))\nprint(at(ones([3]), 7))\n")
    r = run(tdl, "run", "--trace-report", fl)
    expect("--trace-report counts a failed call apart from the served ones",
           r.returncode == 1 and r.stdout == "1.0\n1.0\n" and "out of range" in r.stderr
           and "2 calls served, 1 failed with an error;" in r.stderr, r)
    # Sizes 1, 2, 3, 4, 5: size 1 stays its own trace, the third call generalizes against the
    # second (not only the first) and serves the rest (SPEC §6).
    gen = os.path.join(d, "trace_generalize.tdl")
    with open(gen, "w") as f:
        f.write("graph fn f(x) { return x * 2.0 }\nfor n in range(1, 6) { print(sum(f(ones([n])))) }\n")
    r = run(tdl, "run", "--trace-report", gen)
    expect("a first trace at size 1 does not stop later ones from generalizing",
           r.returncode == 0 and r.stdout == "2.0\n4.0\n6.0\n8.0\n10.0\n" and "graph fn f: 3 traces" in r.stderr
           and "#3 (x: f32[?0]): 3 calls served" in r.stderr, r)
    # tdl doc NAME (SPEC §12): builtins, modules, module fns; unknown names get a suggestion.
    r = run(tdl, "doc", "sum")
    expect("tdl doc sum: signature with defaults, description, example",
           r.returncode == 0 and r.stdout.startswith("sum(x, axis=none, keepdims=false)\n") and "example:" in r.stdout, r)
    r = run(tdl, "doc", "optim")
    expect("tdl doc optim lists the module's fns", r.returncode == 0 and "optim.adam(params, grads, state, lr, b1=0.9" in r.stdout, r)
    hm = os.path.join(d, "help_module.tdl")
    with open(hm, "w") as f:
        f.write("import nn\nhelp(nn)\nhelp(nn.mse)\nhelp(\"optim.sgd\")\n")
    r = run(tdl, "run", hm)
    expect("help(module), help(module fn), help(\"module.fn\") print their entries",
           r.returncode == 0 and r.stdout.startswith("module nn (import nn):\n") and "nn.mse(pred, target)\n    Mean squared" in r.stdout
           and "optim.sgd(params, grads, lr)" in r.stdout, r)
    r = run(tdl, "doc", "sofmax")
    expect("tdl doc of an unknown name: exit 1 with the closest entry",
           r.returncode == 1 and "did you mean 'nn.softmax'?" in r.stderr, r)
    r = run(tdl, "doc")
    expect("tdl doc without NAME: exit 2", r.returncode == 2, r)
    r = run(tdl, "run", good, "--eager")
    expect("tdl run prints the script's output", r.returncode == 0 and r.stdout == "2\n", r)
    binf = os.path.join(d, "binary.tdl")
    with open(binf, "wb") as f:
        f.write(bytes(range(256)) * 4)
    r = run(tdl, "check", binf)
    expect("binary garbage: exit 1, no crash", r.returncode == 1 and "internal error" not in r.stderr, r)
    # Buffer reuse by liveness (issue 5): `a` dies at the fused op that makes `b`, which
    # takes its buffer; --trace-report counts it. `x` (the caller's) is never taken.
    reuse = os.path.join(d, "reuse.tdl")
    with open(reuse, "w") as f:
        f.write("graph fn f(x: f32[?]) {\n  let a = exp(x) * 2.0\n  let s = sum(a)\n  return a / s + 1.0\n}\n"
                "let x = [0.0, 1.0, 2.0]\nprint(f(x), x)\nprint(f(x))\n")
    r = run(tdl, "run", "--trace-report", reuse)
    expect("a fused result reuses the buffer of an operand that dies there (--trace-report)",
           r.returncode == 0 and "2 buffers reused" in r.stderr and r.stdout.splitlines()[0].endswith("[0.0, 1.0, 2.0]"), r)
    # A gemm update (w - lr * x^T @ r) in a training loop updates the carried weights in
    # place from the second iteration on; the caller's `w` is copied, never written.
    loop = os.path.join(d, "gemm_loop.tdl")
    with open(loop, "w") as f:
        f.write("graph fn train(w: f32[3, 2], x: f32[4, 3], g: f32[4, 2]) {\n  var v = w\n"
                "  for i in range(5) { v = v - 0.1 * (transpose(x) @ (x @ v - g)) }\n  return v\n}\n"
                "let x = reshape(cast(arange(12), f32) / 10.0, [4, 3])\nlet w = ones([3, 2])\n"
                "print(train(w, x, ones([4, 2])), w)\n")
    r = run(tdl, "run", "--trace-report", loop, env=dict(os.environ, TDL_CACHE_DIR="off"))
    e = run(tdl, "run", "--eager", loop)
    expect("a gemm update in a loop reuses the carried buffer, never the caller's (--trace-report)",
           r.returncode == 0 and "4 buffers reused" in r.stderr and r.stdout == e.stdout
           and r.stdout.rstrip().endswith("[1.0, 1.0]]"), r)
    r = run(tdl, "emit", reuse, "--fn", "f", "--stage", "opt")
    expect("emit without --args takes the signature from the annotations",
           r.returncode == 0 and "func @f" in r.stdout and "fused(" in r.stdout, r)
    # --profile (SPEC §8): time per op kind and per graph fn, on stderr after the script's
    # own output (which it leaves alone), with the peak tensor memory.
    def profiled(name, text):
        path = os.path.join(d, name)
        with open(path, "w") as f:
            f.write(text)
        return path, run(tdl, "run", "--profile", path)
    prof, r = profiled("prof.tdl", "graph fn g(x: f32[?, 3], w: f32[3, 2]) { return sum(relu(x @ w)) }\n"
                                   "let x = ones([4, 3])\nlet w = ones([3, 2])\n"
                                   "for i in range(3) { print(g(x, w)) }\nprint(sum(exp(x) * 2.0))\n")
    err = r.stderr
    expect("--profile: the script's output is unchanged",
           r.returncode == 0 and r.stdout == "24.0\n24.0\n24.0\n65.238754\n", r)
    expect("--profile: eager ops, graph fn calls, runtime ops in compiled code, compile time, peak memory",
           "profile:" in err and "eager tensor ops" in err and any(l.split()[:2] == ["exp", "1"] for l in err.splitlines())
           and any(l.split()[:2] == ["g", "3"] for l in err.splitlines())
           and "runtime ops inside compiled graph fns" in err and "matmul" in err
           and "compiling graph fns" in err and "peak tensor memory:" in err, r)
    # Native code that is not a runtime op is timed too: fused loops and native element
    # loops, by kind and .tdl line (issue 17: the graph fn's time is attributed).
    _, r = profiled("prof2.tdl", "graph fn h(x: f32[?]) {\n    var y = exp(x * 2.0) + 1.0\n"
                                 "    for i in range(y.shape[0]) { if y[i] > 3.0 { y[i] = 3.0 } }\n    return y\n}\n"
                                 "for i in range(3) { print(h([0.0, 1.0])) }\n")
    lines = r.stderr.splitlines()
    expect("--profile: fused loops and native loops are named with their line",
           r.returncode == 0 and r.stdout == "[2.0, 3.0]\n" * 3
           and any(l.split()[:4] == ["fused", "loop", "(line", "2)"] for l in lines)
           and any(l.split()[:4] == ["native", "loop", "(line", "3)"] for l in lines), r)
    # Independent products run at once (tdl_op_group), timed as one entry with their lines;
    # with the fused loop of their results after them, band by band, one entry too.
    # Products of 32 x 64 x 64 multiply-adds: below the size eager mode splits itself, so they
    # run at once whatever the BLAS kernels; the loop joins them band by band only where
    # bands keep the products' bits (`tdl --version` says; OPENBLAS_CORETYPE=Haswell: no).
    exact = "products cut into bands keep their bits: yes" in run(tdl, "--version").stdout
    path = os.path.join(d, "groups.tdl")
    for ret, out, name in (("(p, q)", "131072.0", "2 products at once (lines 2-3)"),
                           ("tanh(p + q)", "2048.0", "2 products and a fused loop at once (lines 2-4)" if exact
                            else "2 products at once (lines 2-4)")):
        with open(path, "w") as f:
            f.write("graph fn g(a: f32[M, K], b: f32[K, N], c: f32[M, K]) {\n    let p = a @ b\n"
                    f"    let q = c @ b\n    return {ret}\n}}\n"
                    "for i in range(3) { print(sum(g(ones([32, 64]), ones([64, 64]), ones([32, 64]))"
                    + ("[1]" if ret.startswith("(") else "") + ")) }\n")
        r = run(tdl, "run", "--profile", path, env=dict(os.environ, TDL_NUM_THREADS="2"))
        expect(f"--profile: {name}", r.returncode == 0 and r.stdout == f"{out}\n" * 3
               and any(" ".join(l.split()).startswith(name + " ") for l in r.stderr.splitlines()), r)
    r = run(tdl, "run", "--eager", "--profile", prof)
    expect("--profile with --eager: the graph fn's ops are eager ops",
           r.returncode == 0 and any(l.split()[:2] == ["matmul", "3"] for l in r.stderr.splitlines())
           and "compiling graph fns" not in r.stderr, r)
    r = run(tdl, "run", prof)
    expect("without --profile: no report", r.returncode == 0 and r.stderr == "", r)
    compile_cache(tdl, d)
    sys.exit(summary())


if __name__ == "__main__":
    main()
