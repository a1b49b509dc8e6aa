"""The Jupyter kernel (`tdl jupyter kernel`) against the protocol (issue 23).

Debian's jupyter_kernel_test drives the kernel through jupyter_client as a notebook would:
kernel_info, execute (stdout, stderr, results, display data, errors), completion,
inspection, is_complete, history, the pager. The tests added below check what TDL adds:
the session kept across cells, tensors as HTML, plots inline, progress bars updated in place,
error locations by cell, an interrupt of an endless loop (eager and in a graph fn) with the
names surviving, and completion of names from earlier cells.

Run: python3 tests/jupyter/test_kernel.py --tdl build/tdl
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

import jupyter_kernel_test as jkt

TDL = None
TIMEOUT = 30


def install(tdl, data_dir):
    subprocess.run([tdl, "jupyter", "install", "--prefix", data_dir], check=True, capture_output=True)
    os.environ["JUPYTER_PATH"] = os.path.join(data_dir, "share", "jupyter")


class TdlKernelTests(jkt.KernelTests):
    kernel_name = "tdl"
    language_name = "tdl"
    file_extension = ".tdl"

    code_hello_world = 'print("hello, world")'
    completion_samples = [
        {"text": "zeros_l", "matches": {"zeros_like"}},
        {"text": "softp", "matches": {"softplus"}},
    ]
    complete_code_samples = ["1 + 2", "let x = 3", "fn f(a) { return a }"]
    incomplete_code_samples = ["fn f(a) {", "print(1,", "let y = [1, 2,"]
    invalid_code_samples = ["print(1))", "}"]
    code_page_something = ":help sum"
    code_generate_error = "let bad = [1.0, 2.0] @ [1.0]"
    code_execute_result = [
        {"code": "1 + 2", "result": "3"},
        {"code": "[1.0, 2.5] * 2.0", "result": "[2.0, 5.0]"},
        {"code": '"a" + "b"', "result": "a" + "b"},
    ]
    code_history_pattern = "1 + *"
    supported_history_operations = ("tail", "range", "search")
    code_display_data = [
        {"code": 'plot("/tmp/tdl_kernel_test_plot.svg", [1.0, 3.0, 2.0])', "mime": "image/svg+xml"},
    ]
    code_inspect_sample = "sum"

    # ----------------------------------------------------------- helpers
    def run_cell(self, code, timeout=TIMEOUT):
        self.flush_channels()
        reply, outputs = self.execute_helper(code, timeout=timeout)
        return reply["content"], outputs

    def stdout_of(self, outputs):
        return "".join(m["content"]["text"] for m in outputs
                       if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")

    # ----------------------------------------------------------- TDL's own
    def test_session_survives_cells(self):
        self.run_cell("let base = 40\nfn add2(v) { return v + 2 }")
        content, outputs = self.run_cell("print(add2(base))")
        self.assertEqual(content["status"], "ok")
        self.assertEqual(self.stdout_of(outputs), "42\n")

    def test_graph_fn_across_cells(self):
        self.run_cell("graph fn scale(x: f32[N]) -> f32[N] { return x * 3.0 }")
        content, outputs = self.run_cell("scale([1.0, 2.0])")
        self.assertEqual(content["status"], "ok")
        results = [m for m in outputs if m["msg_type"] == "execute_result"]
        self.assertEqual(results[0]["content"]["data"]["text/plain"], "[3.0, 6.0]")

    def test_cell_defining_a_fn_runs_again(self):
        # A cell run again after an edit: its fn replaces the earlier one, callers see it.
        self.assertEqual(self.run_cell("graph fn scale(v) { return v * 2.0 }")[0]["status"], "ok")
        self.assertEqual(self.stdout_of(self.run_cell("print(scale(1.0))")[1]), "2.0\n")
        content, _ = self.run_cell("graph fn scale(v) { return v * 3.0 }")
        self.assertEqual(content["status"], "ok", content)
        self.assertEqual(self.stdout_of(self.run_cell("print(scale(1.0))")[1]), "3.0\n")

    def test_tensor_html(self):
        content, outputs = self.run_cell("reshape(arange(6), [2, 3])")
        data = [m for m in outputs if m["msg_type"] == "execute_result"][0]["content"]["data"]
        self.assertEqual(data["text/plain"], "[[0, 1, 2],\n [3, 4, 5]]")
        html = data["text/html"]
        self.assertIn("<table", html)
        self.assertEqual(html.count("<tr>"), 2)
        self.assertIn(">5</td>", html)
        self.assertIn("i64[2, 3]", html)

    def test_big_tensor_summarised(self):
        content, outputs = self.run_cell("zeros([2000, 2000])")
        data = [m for m in outputs if m["msg_type"] == "execute_result"][0]["content"]["data"]
        self.assertEqual(data["text/html"].count("<tr>"), 7)  # 3 + gap + 3
        self.assertIn("...", data["text/plain"])

    def test_progress_updates_one_output(self):
        content, outputs = self.run_cell("var s = 0\nfor i in progress(range(50)) { s += i }\nprint(s)")
        self.assertEqual(content["status"], "ok")
        shown = [m for m in outputs if m["msg_type"] == "display_data"]
        self.assertEqual(len(shown), 1)
        display_id = shown[0]["content"]["transient"]["display_id"]
        updates = [m for m in outputs if m["msg_type"] == "update_display_data"]
        self.assertTrue(updates)
        self.assertEqual(updates[-1]["content"]["transient"]["display_id"], display_id)
        self.assertIn("100%", updates[-1]["content"]["data"]["text/plain"])
        self.assertIn("1225", self.stdout_of(outputs))
        self.assertNotIn("stderr", [m["content"].get("name") for m in outputs if m["msg_type"] == "stream"])

    def test_error_names_cell_line(self):
        self.run_cell("let ok = 1")
        content, outputs = self.run_cell("let a = 1\nlet b = a + [1.0, 2.0] @ [3.0]")
        self.assertEqual(content["status"], "error")
        self.assertEqual(content["ename"], "Error")
        self.assertIn("cannot multiply shapes", content["evalue"])
        tb = "\n".join(content["traceback"])
        self.assertRegex(tb, r"In \[\d+\]:2:\d+: error: cannot multiply shapes")
        self.assertIn("~~~", tb)  # the caret snippet
        # The session goes on.
        content, outputs = self.run_cell("print(ok)")
        self.assertEqual(self.stdout_of(outputs), "1\n")

    def test_syntax_error(self):
        content, outputs = self.run_cell("let = 3")
        self.assertEqual(content["status"], "error")
        self.assertIn("error:", "\n".join(content["traceback"]))

    def test_completion_of_earlier_names_and_members(self):
        self.run_cell("let learning_rate = 0.1\nimport nn")
        for text, want in [("learning_r", "learning_rate"), ("nn.softm", "softmax"),
                           ("let q = learn", "learning_rate"), ("print(learning_r", "learning_rate")]:
            self.kc.complete(text)
            reply = self.get_non_kernel_info_reply(timeout=TIMEOUT)
            self.assertIn(want, reply["content"]["matches"], text)
            self.assertEqual(reply["content"]["cursor_end"], len(text))

    def test_completion_of_value_members(self):
        self.run_cell('var params = {weight: ones([2, 2]), bias: 0.5}\nvar cfg = {"lr": 0.1}')
        for text, want, unwanted in [("params.we", {"weight"}, None), ("params.", {"weight", "bias"}, "print"),
                                     ("params.weight.sh", {"shape"}, None), ("cfg.it", {"items"}, None)]:
            self.kc.complete(text)
            reply = self.get_non_kernel_info_reply(timeout=TIMEOUT)
            self.assertTrue(want <= set(reply["content"]["matches"]), (text, reply["content"]["matches"]))
            if unwanted:
                self.assertNotIn(unwanted, reply["content"]["matches"])

    def test_inspect_value(self):
        self.run_cell("let acc = [0.5, 0.75]")
        self.kc.inspect("acc", 3)
        reply = self.get_non_kernel_info_reply(timeout=TIMEOUT)
        self.assertTrue(reply["content"]["found"])
        text = reply["content"]["data"]["text/plain"]
        self.assertIn("f32[2]", text)
        self.assertIn("[0.5, 0.75]", text)

    def test_inspect_user_fn_and_call(self):
        self.run_cell("# Doubles v.\nfn twice(v) { return v * 2 }")
        # Inside a call of one's own fn being typed (the cell does not parse yet), and after
        # non-ASCII text (cursor positions count code points).
        for code, pos, want in [("twice", 5, "Doubles v."), ("sum(x, ", 7, "sum("), ("twice(1, ", 9, "Doubles v."),
                                ('"\u00e9\u00e9" + twice', 14, "Doubles v.")]:
            self.kc.inspect(code, pos)
            reply = self.get_non_kernel_info_reply(timeout=TIMEOUT)
            self.assertEqual(reply["content"]["status"], "ok")
            self.assertTrue(reply["content"]["found"], code)
            self.assertIn(want, reply["content"]["data"]["text/plain"])

    def interrupt_after(self, code, seconds=1.0):
        self.flush_channels()
        msg_id = self.kc.execute(code)
        time.sleep(seconds)
        start = time.time()
        self.km.interrupt_kernel()
        while True:
            reply = self.kc.get_shell_msg(timeout=TIMEOUT)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        elapsed = time.time() - start
        self.flush_channels()
        return reply["content"], elapsed

    def test_interrupt_endless_loop(self):
        self.run_cell("var kept = 7")
        content, elapsed = self.interrupt_after("var n = 0\nwhile true { n += 1 }")
        self.assertEqual(content["status"], "error")
        self.assertEqual(content["ename"], "KeyboardInterrupt")
        self.assertLess(elapsed, 1.0)
        _, outputs = self.run_cell("print(kept)\nprint(n > 0)")
        self.assertEqual(self.stdout_of(outputs), "7\ntrue\n")

    def test_interrupt_graph_fn_loop(self):
        self.run_cell("graph fn spin(x: f32[]) -> f32[] { var y = x\nwhile y > -1.0 { y = y + 1.0 }\nreturn y }")
        content, elapsed = self.interrupt_after("spin(1.0)")
        self.assertEqual(content["status"], "error")
        self.assertEqual(content["ename"], "KeyboardInterrupt")
        self.assertLess(elapsed, 1.0)
        _, outputs = self.run_cell("print(1 + 1)")
        self.assertEqual(self.stdout_of(outputs), "2\n")

    def test_interrupt_while_idle_is_harmless(self):
        self.km.interrupt_kernel()
        time.sleep(0.3)
        content, outputs = self.run_cell("print(5)")
        self.assertEqual(content["status"], "ok")
        self.assertEqual(self.stdout_of(outputs), "5\n")

    def test_user_expressions_and_silent(self):
        # execute_request's user_expressions: each evaluated after the cell (values as text,
        # errors as errors); `let` is no expression. A silent request shows no result.
        self.flush_channels()
        msg_id = self.kc.execute("let ue = [1.0, 2.0]\nue * 2.0",
                                 user_expressions={"a": "ue + 1.0", "b": "nope", "c": "let z = 1"})
        reply = self.kc.get_shell_msg(timeout=TIMEOUT)
        self.assertEqual(reply["parent_header"]["msg_id"], msg_id)
        ue = reply["content"]["user_expressions"]
        self.assertEqual(ue["a"]["status"], "ok", ue)
        self.assertEqual(ue["a"]["data"]["text/plain"], "[2.0, 3.0]")
        self.assertEqual(ue["b"]["status"], "error")
        self.assertIn("undefined name 'nope'", ue["b"]["evalue"])
        self.assertEqual(ue["c"]["status"], "error")
        self.flush_channels()
        self.kc.execute("7 * 6", silent=True)
        self.kc.get_shell_msg(timeout=TIMEOUT)
        time.sleep(0.2)
        iopub = []
        while True:
            try:
                iopub.append(self.kc.get_iopub_msg(timeout=0.5))
            except Exception:
                break
        self.assertFalse([m for m in iopub if m["msg_type"] == "execute_result"], iopub)
        _, outputs = self.run_cell("print(ue[1])")
        self.assertEqual(self.stdout_of(outputs), "2.0\n")

    def test_exit_keeps_session(self):
        self.run_cell("let still = 3")
        content, outputs = self.run_cell("exit(0)")
        self.assertEqual(content["status"], "ok")
        _, outputs = self.run_cell("print(still)")
        self.assertEqual(self.stdout_of(outputs), "3\n")


def main():
    global TDL
    ap = argparse.ArgumentParser()
    ap.add_argument("--tdl", required=True)
    args, rest = ap.parse_known_args()
    TDL = os.path.abspath(args.tdl)
    data = tempfile.mkdtemp(prefix="tdl-jupyter-")
    try:
        install(TDL, data)
        prog = unittest.main(argv=[sys.argv[0], "-v"] + rest, exit=False)
        ok = prog.result.wasSuccessful()
    finally:
        shutil.rmtree(data, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
