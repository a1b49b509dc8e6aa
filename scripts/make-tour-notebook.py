#!/usr/bin/env python3
"""Writes examples/tour.ipynb, the language tour as a notebook (issue 23), from the cells
below (the notebook is kept without outputs; tests/jupyter/test_notebook.py runs it).

Run: python3 scripts/make-tour-notebook.py
"""
import os
import json
cells = []
def md(s): cells.append({"cell_type": "markdown", "metadata": {}, "source": s.strip("\n")})
def code(s): cells.append({"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": s.strip("\n")})

md("""
# A tour of TDL, as a notebook

TDL reads like Python with braces, computes like NumPy, and compiles like `tf.function`.
Each cell runs at once in one eager session: names, imports and compiled graph fns stay
from cell to cell. The value of a cell's expression is shown below it (tensors as tables);
`plot` draws inline. The same tour as text is `docs/tour.md`.
""")
md("""
## Values and dtypes
A tensor literal has a dtype and a shape; a scalar is a rank-0 tensor.
""")
code("""
let x = [[1.0, 2.0], [3.0, 4.0]]
print(x.shape, x.rank, x.dtype)
x
""")
code("""
let ids = cast([1, 2, 3], i32)
ids * 0.5
""")
md("""
Literals are **weak**: `x_f64 * 2.0` stays `f64`. Strong dtypes promote along
`bool < i32 < i64 < f32 < f64`.

## Bindings and value semantics
`let` binds for good, `var` may change; assignment never aliases.
""")
code("""
let a = zeros([3])
var b = a
b[1] = 5.0
b[1:] *= 2.0
print(a, b)
""")
md("Lists grow as in Python; dicts have string keys.")
code("""
var losses = []
for step in range(3) { losses.append(step * 0.5) }
var cfg = {"lr": 0.1, "epochs": 10}
cfg["lr"] = 0.05
for (k, v) in cfg.items() { print(k, v) }
losses
""")
md("""
## Control flow and functions
`if` needs a bool scalar; closures capture by value.
""")
code("""
fn dense(x, w, b = 0.0) { return x @ w + b }
let double = fn(v) => v * 2.0
for i in range(3) { if i == 1 { continue }; print(i) }
dense(x, x, b=1.0)
""")
md("""
## NumPy-style tensors
Broadcasting, slicing with steps, reductions with `axis=` and `keepdims=`. Big tensors
are summarised as `print` summarises them.
""")
code("""
let m = reshape(arange(12.0), [3, 4])
print(m[::2, 1:])
sum(m, axis=0)
""")
code("""
reshape(arange(10000), [100, 100])
""")
md("""
## Graph mode
A `graph fn` is traced on its first call per argument signature, optimized and compiled
through LLVM; later calls reuse the compiled code. It stays compiled across cells.
""")
code("""
graph fn normalize(v: f32[N, 2]) -> f32[N, 2] { return v / sum(v, axis=1, keepdims=true) }
normalize([[1.0, 3.0], [2.0, 2.0]])
""")
code("""
normalize([[4.0, 4.0], [1.0, 0.0], [3.0, 1.0]])
""")
md("""
## Automatic differentiation
Tapes record differentiable operations; `grad` makes a gradient function.
""")
code("""
let w = [1.0, 2.0, 3.0]
with tape() as t { let z = sum(w * w) }
print(t.gradient(z, w))
grad(fn(v) => sum(exp(v)))([0.0, 1.0])
""")
md("""
## Training, with a progress bar and a plot
Linear regression by gradient descent in a graph fn. `progress` shows one bar that
updates in place; `plot` writes its SVG file and shows it here.
""")
code("""
let t = arange(20.0) / 20.0
let X = stack([t, cos(3.0 * t)], axis=1)
let y = X @ [[2.0], [-1.0]] + 0.5

graph fn step(p: {w: f32[2, 1], b: f32[]}, X: f32[B, 2], y: f32[B, 1]) {
  let (loss, g) = value_and_grad(fn(q) => mean((X @ q.w + q.b - y) ** 2.0))(p)
  return ({w: p.w - 0.5 * g.w, b: p.b - 0.5 * g.b}, loss)
}

var p = {w: zeros([2, 1]), b: 0.0}
var history = []
for epoch in progress(range(2000), desc="train") {
  let (next, loss) = step(p, X, y)
  p = next
  history.append(loss)
}
print(f"final loss {history[-1]:.2e}")
plot("tour_loss.svg", stack(history), title="training loss", xlabel="epoch", ylabel="mse")
""")
code("""
p
""")
md("""
## Help
`help(x)` and `:help NAME` show the reference; Tab completes names, Shift-Tab shows a
signature and its documentation.
""")
code("""
help(sum)
""")

nb = {
    "cells": cells,
    "metadata": {
        "kernelspec": {"display_name": "TDL", "language": "tdl", "name": "tdl"},
        "language_info": {"name": "tdl", "file_extension": ".tdl", "mimetype": "text/x-tdl",
                          "codemirror_mode": "rust", "pygments_lexer": "rust"},
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}
for i, c in enumerate(nb["cells"]):
    c["id"] = f"cell-{i:02d}"
    src = c["source"].split("\n")
    c["source"] = [l + "\n" for l in src[:-1]] + [src[-1]]
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "tour.ipynb")
with open(out + ".tmp", "w") as f:
    f.write(json.dumps(nb, indent=1) + "\n")
os.replace(out + ".tmp", out)
