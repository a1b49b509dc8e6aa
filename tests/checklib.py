"""The check helpers of the Python test scripts: `expect` prints `ok`/`FAIL` per check and
`summary` the closing `N passed, N failed` line (and the exit status)."""

failures = []
checks = [0]


def expect(name, cond, r=None):
    """One check; `r` (a run's result: returncode, stdout, stderr) is shown when it fails."""
    checks[0] += 1
    if cond:
        print(f"ok   {name}")
    else:
        failures.append(name)
        extra = ""
        if r is not None and hasattr(r, "returncode"):
            extra = f" (exit {r.returncode}; stdout {r.stdout[:300]!r}; stderr {r.stderr[-600:]!r})"
        elif r is not None:  # a detail of another kind (text a check collected)
            extra = f" ({str(r)[-600:]!r})"
        print(f"FAIL {name}{extra}")


def summary():
    print(f"{checks[0] - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0
