"""examples/tour.ipynb executed headless through the TDL kernel (issue 23).

`jupyter nbconvert --to notebook --execute` runs every cell as a notebook server would;
then the outputs are checked: no errors, a tensor shown as an HTML table, the plot as inline
SVG (and its file written), the progress bar as one display at 100%, and the graph fn's
results.

Run: python3 tests/jupyter/test_notebook.py --tdl build/tdl
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tdl", required=True)
    args = ap.parse_args()
    tdl = os.path.abspath(args.tdl)
    work = tempfile.mkdtemp(prefix="tdl-notebook-")
    try:
        subprocess.run([tdl, "jupyter", "install", "--prefix", work], check=True, capture_output=True)
        env = dict(os.environ, JUPYTER_PATH=os.path.join(work, "share", "jupyter"))
        src = os.path.join(ROOT, "examples", "tour.ipynb")
        with open(src) as f:
            clean = json.load(f)
        for c in clean["cells"]:
            if c["cell_type"] == "code" and (c["outputs"] or c["execution_count"] is not None):
                fail("examples/tour.ipynb is kept without outputs (run scripts/make-tour-notebook.py)")
        shutil.copy(src, work)
        r = subprocess.run([sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute",
                            "--ExecutePreprocessor.timeout=120", "tour.ipynb", "--output", "out.ipynb"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            fail("nbconvert failed:\n" + r.stdout + r.stderr)
        with open(os.path.join(work, "out.ipynb")) as f:
            nb = json.load(f)
        outputs = [(("".join(c["source"])), o) for c in nb["cells"] if c["cell_type"] == "code"
                   for o in c["outputs"]]
        text = lambda v: "".join(v) if isinstance(v, list) else v
        errors = [o for _, o in outputs if o["output_type"] == "error"]
        if errors:
            fail(f"error outputs: {errors}")
        html = [text(o["data"]["text/html"]) for _, o in outputs
                if o["output_type"] == "execute_result" and "text/html" in o["data"]]
        if not any("<table" in h and "f32[2, 2]" in h for h in html):
            fail("no tensor shown as an HTML table")
        svg = [text(o["data"]["image/svg+xml"]) for _, o in outputs
               if o["output_type"] == "display_data" and "image/svg+xml" in o["data"]]
        if len(svg) != 1 or "<svg" not in svg[0] or "training loss" not in svg[0]:
            fail(f"expected one inline SVG plot, got {len(svg)}")
        if not os.path.exists(os.path.join(work, "tour_loss.svg")):
            fail("plot() did not write its file")
        bars = [text(o["data"]["text/plain"]) for _, o in outputs
                if o["output_type"] == "display_data" and "text/plain" in o["data"] and "train:" in text(o["data"]["text/plain"])]
        if len(bars) != 1 or "100%" not in bars[0] or "2000/2000" not in bars[0]:
            fail(f"expected one progress display at 100%, got {bars}")
        graph = [text(o["data"]["text/plain"]) for s, o in outputs
                 if o["output_type"] == "execute_result" and ("graph fn normalize" in s or s.startswith("normalize("))]
        if graph != ["[[0.25, 0.75],\n [0.5, 0.5]]", "[[0.5, 0.5],\n [1.0, 0.0],\n [0.75, 0.25]]"]:
            fail(f"graph fn results: {graph}")
        loss = [text(o["text"]) for _, o in outputs if o["output_type"] == "stream" and "final loss" in text(o["text"])]
        if not loss or float(loss[0].split()[-1]) > 1e-3:
            fail(f"training did not converge: {loss}")
        print(f"ok: {len(nb['cells'])} cells, {len(outputs)} outputs, no errors")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
