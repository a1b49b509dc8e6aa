#!/usr/bin/env python3
"""The compile cache on disk against damage and against other local users
(docs/compile-cache.md). Every case runs `tdl run` as a user would and requires the
output of eager mode, exit 0, no hang, and that no planted code ran:

- damaged entries (truncated, flipped bytes, a table with a flipped digit, slots out of
  range or an oversized count under a correct digest, an older format, FIFOs, links,
  files writable by others, files of another user) are removed and compiled again;
- entries are private whatever the umask (0600/0700);
- two users (as root: the attacker runs as `nobody`): swapping the cache directory while
  the victim runs, and overwriting entries written under `umask 000`, never make the
  victim run the attacker's code.
"""
import argparse
import glob
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time

from checklib import expect, summary


PROG = """graph fn a(x: f32[?]) {
  var s = x
  for i in range(3) { s = tanh(s * 0.5) + x }
  return (s, sum(s))
}
graph fn b(x: f32[?]) { return x * 3.0 + 1.0 }
print(a([0.5, -1.0, 2.0]))
print(b([1.0, 2.0]))
"""

# The victim of the directory swap: a() opens the cache, then a pause far longer than the
# harness takes to swap the directory, then b() looks its entry up.
SLOW = """graph fn a(x: f32[?]) { return x * 2.0 }
graph fn b(x: f32[?]) { return x * 3.0 + 1.0 }
print(a([1.0, 2.0]))
let t0 = time()
while time() - t0 < PAUSE { }
print(b([1.0, 2.0]))
"""

EVIL_C = r"""
#include <fcntl.h>
#include <unistd.h>
__attribute__((constructor)) static void planted(void) {
  int fd = open("%s", O_WRONLY | O_CREAT, 0666);
  if (fd >= 0) close(fd);
}
int tdl_cached_entry(void* ctx) { (void)ctx; return 0; }
"""

NOBODY = 65534


def as_nobody():
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def run(tdl, prog, cache, *, report=True, umask=None, user=None, timeout=60):
    env = dict(os.environ, TDL_CACHE_DIR=cache)
    args = [tdl, "run"] + (["--trace-report"] if report else []) + [prog]

    def pre():
        if umask is not None:
            os.umask(umask)
        if user == "nobody":
            as_nobody()
    try:
        return subprocess.run(args, capture_output=True, text=True, errors="replace", timeout=timeout, env=env,
                              preexec_fn=pre)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(args, -999, e.stdout or "", "TIMEOUT")


def wait_entries(cache, n, timeout=60):
    """The link job runs in the background: waits until `n` complete entries exist."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        sos = glob.glob(os.path.join(cache, "*.so"))
        sos = [s for s in sos if len(os.path.basename(s)) == 35]
        if len(sos) >= n and all(os.path.exists(s[:-3] + ".table") for s in sos):
            time.sleep(0.2)
            return sorted(sos)
        time.sleep(0.1)
    return sorted(glob.glob(os.path.join(cache, "?" * 32 + ".so")))


def entry_for(cache, fn_hint):
    """The entry whose table belongs to the graph fn with `fn_hint` in its op names is hard
    to tell apart from outside; the caches here hold entries for a() and b(), and b's table
    is the shorter one (it has fewer ops)."""
    sos = wait_entries(cache, 2)
    sizes = sorted((os.path.getsize(s[:-3] + ".table"), s) for s in sos)
    return sizes[0][1] if fn_hint == "b" else sizes[-1][1]


def retable(table_path, new_text=None, so_bytes=None):
    """Rewrites an entry's table file with correct digests (an attacker or a bug that gets the
    digest right): `new_text` replaces the table text, `so_bytes` the recorded object."""
    with open(table_path, "rb") as f:
        data = f.read()
    lines = data.split(b"\n", 3)
    assert lines[0] == b"tdl-cache-entry 2", lines[0]
    text = lines[3] if new_text is None else new_text
    so_digest = lines[1][len(b"so-sha256 "):] if so_bytes is None else hashlib.sha256(so_bytes).hexdigest().encode()
    out = (b"tdl-cache-entry 2\nso-sha256 " + so_digest + b"\ntable-sha256 " +
           hashlib.sha256(text).hexdigest().encode() + b"\n" + text)
    with open(table_path, "r+b") as f:  # in place: the file keeps its owner and mode
        f.write(out)
        f.truncate()


def good_run(name, r, want, recompiled=True):
    ok = r.returncode == 0 and r.stdout == want
    if recompiled:
        ok = ok and "llvm" in r.stderr
    expect(name, ok, r)


def damage_cases(tdl, d, prog, want):
    cache = os.path.join(d, "dmg")
    r = run(tdl, prog, cache)
    good_run("a first run compiles and agrees with eager mode", r, want)
    wait_entries(cache, 2)
    r = run(tdl, prog, cache)
    expect("a second run loads both graph fns from the cache",
           r.returncode == 0 and r.stdout == want and r.stderr.count("loaded from the compile cache") == 2, r)

    def case(name, mutate):
        so = entry_for(cache, "a")
        table = so[:-3] + ".table"
        mutate(so, table)
        r = run(tdl, prog, cache, timeout=30)
        good_run(f"damaged entry ({name}): compiled again, same output, exit 0", r, want)
        # Removed and stored anew: the next run loads it again.
        wait_entries(cache, 2)
        r = run(tdl, prog, cache)
        expect(f"damaged entry ({name}): replaced by a good one",
               r.returncode == 0 and r.stdout == want and r.stderr.count("loaded from the compile cache") == 2, r)

    def truncate(so, table):
        size = os.path.getsize(so)
        with open(so, "r+b") as f:
            f.truncate(size // 2)

    def flip_so(so, table):
        with open(so, "r+b") as f:
            data = bytearray(f.read())
            for off in range(len(data) // 3, len(data), max(1, len(data) // 7)):
                data[off] ^= 0x5A
            f.seek(0)
            f.write(data)

    def flip_digit(so, table):
        with open(table, "rb") as f:
            data = bytearray(f.read())
        body = data.index(b"tdl-table")
        for i in range(len(data) - 1, body, -1):
            if chr(data[i]).isdigit():
                data[i] = ord("1") if data[i] != ord("1") else ord("2")
                break
        with open(table, "wb") as f:
            f.write(data)

    def slot_out_of_range(so, table):
        with open(table, "rb") as f:
            text = f.read().split(b"\n", 3)[3]
        lines = text.split(b"\n")
        lines[2] = b"1 99999"  # the parameter's slot
        retable(table, b"\n".join(lines))

    def oversized_count(so, table):
        with open(table, "rb") as f:
            text = f.read().split(b"\n", 3)[3]
        lines = text.split(b"\n")
        lines[1] = b"99999999999999999999999"
        retable(table, b"\n".join(lines))

    def old_format(so, table):
        with open(table, "rb") as f:
            text = f.read().split(b"\n", 3)[3]
        with open(table, "wb") as f:
            f.write(text)

    def fifo(path):
        def m(so, table):
            os.unlink(path(so, table))
            os.mkfifo(path(so, table), 0o600)
        return m

    def symlink(so, table):
        real = so + ".real"
        os.rename(so, real)
        os.symlink(real, so)

    def writable_by_others(so, table):
        os.chmod(so, 0o666)

    def directory(so, table):
        os.unlink(so)
        os.mkdir(so)

    case("truncated shared object", truncate)
    case("flipped bytes in the shared object", flip_so)
    case("a flipped digit in the table", flip_digit)
    case("a slot out of range, digests correct", slot_out_of_range)
    case("an oversized count, digests correct", oversized_count)
    case("a table of the older format", old_format)
    case("a FIFO planted as the shared object", fifo(lambda so, t: so))
    case("a FIFO planted as the table", fifo(lambda so, t: t))
    case("a symbolic link as the shared object", symlink)
    case("a shared object writable by others", writable_by_others)
    case("a directory as the shared object", directory)
    if os.geteuid() == 0:
        case("a shared object of another user", lambda so, t: os.chown(so, NOBODY, NOBODY))
    leftover = [n for n in os.listdir(cache) if n.endswith(".real")]
    for n in leftover:
        os.unlink(os.path.join(cache, n))


def umask_cases(tdl, d, prog, want):
    cache = os.path.join(d, "umask")
    r = run(tdl, prog, cache, umask=0)
    good_run("under umask 000: same output", r, want)
    wait_entries(cache, 2)
    modes = {n: stat.S_IMODE(os.stat(os.path.join(cache, n)).st_mode) for n in os.listdir(cache)}
    expect("under umask 000: the directory and every entry are private (no group/other bits)",
           stat.S_IMODE(os.stat(cache).st_mode) == 0o700 and len(modes) == 4
           and all(m & 0o077 == 0 for m in modes.values()), None)
    if not all(m & 0o077 == 0 for m in modes.values()):
        print("     modes:", {k: oct(v) for k, v in modes.items()})


def evil_object(d, marker):
    src = os.path.join(d, "evil.c")
    with open(src, "w") as f:
        f.write(EVIL_C % marker)
    out = os.path.join(d, "evil.so")
    subprocess.run(["cc", "-shared", "-fPIC", "-o", out, src], check=True)
    os.chmod(out, 0o755)
    with open(out, "rb") as f:
        return f.read()


def two_user_cases(tdl, d, prog, want):
    if os.geteuid() != 0:
        print("skip two-user attacks: they need root (to run the attacker as nobody)")
        return
    arena = os.path.join(d, "arena")
    os.mkdir(arena)
    os.chmod(arena, 0o777)  # world-writable and not sticky: anyone may rename what is in it
    marker = os.path.join(arena, "PLANTED-CODE-RAN")
    evil = evil_object(d, marker)

    # The attacker computes the keys by running the same program with a cache of its own,
    # then plants its object under b's key (with a matching digest) in a directory it owns.
    slow = os.path.join(d, "slow.tdl")
    with open(slow, "w") as f:
        f.write(SLOW.replace("PAUSE", "4.0"))
    os.chmod(slow, 0o644)
    fast = os.path.join(d, "fast.tdl")
    with open(fast, "w") as f:
        f.write(SLOW.replace("PAUSE", "0.0"))
    os.chmod(fast, 0o644)
    mine = os.path.join(arena, "attacker")
    # The attacker runs its own copy of the same tdl (same build id, so the same keys): the
    # build folder may be out of nobody's reach.
    own = os.path.join(d, "attacker-tdl")
    shutil.copy(tdl, own)
    os.chmod(own, 0o755)
    r = run(own, fast, mine, user="nobody", report=False)
    expect("two users: the attacker runs the program as nobody with its own cache", r.returncode == 0, r)
    want_slow = r.stdout
    sos = wait_entries(mine, 2)
    expect("two users: the attacker's cache holds both entries", len(sos) == 2, None)

    def plant(cache_dir):
        for so in glob.glob(os.path.join(cache_dir, "?" * 32 + ".so")):
            def write():
                as_nobody()
                with open(so, "wb") as f:
                    f.write(evil)
                retable(so[:-3] + ".table", so_bytes=evil)
            pid = os.fork()
            if pid == 0:
                try:
                    write()
                    os._exit(0)
                except BaseException:
                    os._exit(1)
            _, st = os.waitpid(pid, 0)
            if st != 0:
                return False
        return True

    expect("two users: the attacker plants its object under both keys", plant(mine), None)

    # 1. A directory the attacker owns where the victim's cache should be: refused outright.
    victim = os.path.join(arena, "cache")
    os.rename(mine, victim)
    r = run(tdl, fast, victim, report=False)
    expect("two users: the victim ignores a cache directory owned by another user (same output, "
           "planted code not run)", r.returncode == 0 and r.stdout == want_slow and not os.path.exists(marker), r)
    os.rename(victim, mine)

    # 2. The swap while the victim runs: after the victim opened its (good) cache directory,
    # the attacker renames it away and renames its own directory into its place.
    env = dict(os.environ, TDL_CACHE_DIR=victim)
    p = subprocess.Popen([tdl, "run", slow], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    opened = False
    deadline = time.time() + 30
    while time.time() < deadline and not opened and p.poll() is None:
        try:
            for fd in os.listdir(f"/proc/{p.pid}/fd"):
                try:
                    if os.readlink(f"/proc/{p.pid}/fd/{fd}") == victim:
                        opened = True
                except OSError:
                    pass
        except OSError:
            pass
        time.sleep(0.01)
    swapped = False
    if opened:
        pid = os.fork()
        if pid == 0:
            try:
                as_nobody()
                os.rename(victim, os.path.join(arena, "moved-away"))
                os.rename(mine, victim)
                os._exit(0)
            except BaseException:
                os._exit(1)
        _, st = os.waitpid(pid, 0)
        swapped = st == 0
    out, err = p.communicate(timeout=60)
    r = subprocess.CompletedProcess(p.args, p.returncode, out, err)
    expect("two users: the victim holds its cache directory open while it runs", opened, r)
    expect("two users: the attacker (nobody) swaps the victim's cache directory mid-run", swapped, r)
    expect("two users: after the swap the victim runs only its own code (same output, planted code not run)",
           r.returncode == 0 and r.stdout == want_slow and not os.path.exists(marker), r)
    moved = os.path.join(arena, "moved-away")
    if swapped:
        wait_entries(moved, 2)
        expect("two users: the victim went on storing into its own directory, not the attacker's",
               len(glob.glob(os.path.join(moved, "?" * 32 + ".so"))) == 2, None)

    # 3. Entries written under umask 000 in a directory others can traverse: the attacker
    # cannot write them; entries left writable by others (an older tdl) are never loaded.
    open_dir = os.path.join(arena, "traversable")
    os.mkdir(open_dir, 0o755)
    os.chmod(open_dir, 0o755)
    r = run(tdl, prog, open_dir, umask=0)
    good_run("two users: the victim fills a traversable cache under umask 000", r, want)
    sos = wait_entries(open_dir, 2)
    denied = []
    for so in sos:
        pid = os.fork()
        if pid == 0:
            try:
                as_nobody()
                with open(so, "r+b"):
                    pass
                os._exit(0)
            except PermissionError:
                os._exit(7)
            except BaseException:
                os._exit(1)
        _, st = os.waitpid(pid, 0)
        denied.append(os.waitstatus_to_exitcode(st) == 7)
    expect("two users: the attacker (nobody) cannot open the victim's entries for writing", len(sos) == 2 and all(denied),
           None)
    for so in sos:
        os.chmod(so, 0o666)
        os.chmod(so[:-3] + ".table", 0o666)
    expect("two users: the attacker overwrites entries left writable by others", plant(open_dir), None)
    r = run(tdl, prog, open_dir)
    good_run("two users: the victim never loads entries others can write (recompiled, planted code not run)", r, want)
    expect("two users: no planted constructor ran in any victim process", not os.path.exists(marker), None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tdl", required=True)
    tdl = os.path.abspath(ap.parse_args().tdl)
    d = tempfile.mkdtemp(prefix="tdl-cache-sec-")
    os.chmod(d, 0o755)  # the attacker (nobody) reaches its files
    try:
        prog = os.path.join(d, "prog.tdl")
        with open(prog, "w") as f:
            f.write(PROG)
        os.chmod(prog, 0o644)
        eager = subprocess.run([tdl, "run", "--eager", prog], capture_output=True, text=True)
        want = eager.stdout
        expect("eager reference runs", eager.returncode == 0 and want.count("\n") >= 2, eager)
        damage_cases(tdl, d, prog, want)
        umask_cases(tdl, d, prog, want)
        two_user_cases(tdl, d, prog, want)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return summary()


if __name__ == "__main__":
    sys.exit(main())
