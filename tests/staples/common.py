"""What the generators of tests/staples share: TDL literals of NumPy values, and the test
program they write (each case checked eagerly and inside one graph fn, `name: true` lines)."""
import numpy as np


def lit(a, digits=None):
    """A TDL literal of a NumPy value (nested lists; bools as true/false); floats rounded to
    `digits` decimals when given."""
    a = np.asarray(a)
    if a.ndim == 0:
        if a.dtype == np.bool_:
            return "true" if a else "false"
        if a.dtype.kind == "f":
            return repr(round(float(a), digits) if digits is not None else float(a))
        return str(int(a))
    return "[" + ", ".join(lit(v, digits) for v in a) + "]"


def write_program(out, header, lets, params, cases, compare):
    """Writes the test: `header` lines, `let NAME = LITERAL` for `lets`, a check fn comparing
    with `compare` (a TDL expression of got and want), a graph fn all_cases(params) returning
    every case's expression, and per case (name, expression, wanted literal) a check of the
    eager value and of the graph fn's."""
    lines = list(header)
    lines += [f"let {n} = {v}" for n, v in lets]
    lines += ["fn check(name, got, want) {",
              "    let same = got.rank == want.rank and all(got.shape == want.shape)",
              f"    let ok = same and {compare}",
              '    print(f"{name}: {ok}")',
              "}",
              "graph fn all_cases(" + ", ".join(params) + ") {",
              "    return (" + ", ".join(e for _, e, _ in cases) + ")",
              "}",
              "let got = all_cases(" + ", ".join(p.split(":")[0] for p in params) + ")"]
    for i, (n, e, want) in enumerate(cases):
        lines.append(f'check("{n}", {e}, {want})')
        lines.append(f'check("{n} (graph fn)", got[{i}], {want})')
    for n, _, _ in cases:
        lines += [f"#| {n}: true", f"#| {n} (graph fn): true"]
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {out} ({len(cases)} cases)")
