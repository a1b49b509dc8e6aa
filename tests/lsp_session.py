#!/usr/bin/env python3
"""A scripted language-server session through `tdl lsp` over stdio:
initialize, didOpen of a file with an error (diagnostics), hover, definition,
document symbols, completion, didChange fixing the error, bad frames, shutdown."""
import argparse
import json
import os
import subprocess
import sys
import tempfile

checks, failures = [0], []


def expect(name, cond, detail=""):
    checks[0] += 1
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else f" -- {detail}"))
    if not cond:
        failures.append(name)


class Client:
    def __init__(self, tdl):
        self.p = subprocess.Popen([tdl, "lsp"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.next_id = 1

    def send_raw(self, data: bytes):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def send(self, method, params=None, request=True):
        msg = {"jsonrpc": "2.0", "method": method, "params": params or {}}
        if request:
            msg["id"] = self.next_id
            self.next_id += 1
        body = json.dumps(msg).encode()
        self.send_raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return msg.get("id")

    def read(self):
        length = None
        while True:
            line = self.p.stdout.readline()
            if not line:
                return None
            line = line.strip()
            if not line:
                break
            k, _, v = line.partition(b":")
            if k.lower() == b"content-length":
                length = int(v)
        return json.loads(self.p.stdout.read(length))

    def wait_for(self, pred):
        for _ in range(50):
            m = self.read()
            if m is None:
                return None
            if pred(m):
                return m
        return None

    def open_doc(self, uri, text):
        """didOpen of a document; the diagnostics published for it."""
        self.send("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "tdl", "version": 1, "text": text}},
                  request=False)
        diag = self.wait_for(lambda m: m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri)
        return (diag or {}).get("params", {}).get("diagnostics", [])

    def request(self, method, params=None):
        i = self.send(method, params)
        return self.wait_for(lambda m: m.get("id") == i)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tdl", required=True)
    tdl = os.path.abspath(ap.parse_args().tdl)
    d = tempfile.mkdtemp()
    with open(os.path.join(d, "util.tdl"), "w") as f:
        f.write("let unit = 3.0\n# The area of a square of this side.\nfn area(side, scale = 1.0) { return side * side * unit * scale }\n")
    path = os.path.join(d, "main.tdl")
    uri = "file://" + path
    text = ('import "util.tdl" as geo\n'
            "fn dense(x: f32[N, 4], w: f32[4, 3]) { return x @ w }\n"
            "let a = dense(ones([2, 4]), ones([4, 3]))\n"
            "print(a, geo.area(2.0), undefined_thing)\n")
    c = Client(tdl)
    init = c.request("initialize", {"processId": None, "rootUri": "file://" + d, "capabilities": {}})
    caps = (init or {}).get("result", {}).get("capabilities", {})
    expect("initialize advertises hover, definition, symbols, completion",
           caps.get("hoverProvider") and caps.get("definitionProvider") and caps.get("documentSymbolProvider")
           and "completionProvider" in caps, init)
    c.send("initialized", {}, request=False)
    c.send("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "tdl", "version": 1, "text": text}},
           request=False)
    diag = c.wait_for(lambda m: m.get("method") == "textDocument/publishDiagnostics")
    ds = (diag or {}).get("params", {}).get("diagnostics", [])
    expect("didOpen publishes the error of `tdl check` at its position",
           len(ds) == 1 and ds[0]["message"] == "undefined name 'undefined_thing'"
           and ds[0]["range"]["start"] == {"line": 3, "character": 24} and ds[0]["severity"] == 1, ds)

    h = c.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": {"line": 2, "character": 9}})
    val = (((h or {}).get("result") or {}).get("contents") or {}).get("value", "")
    expect("hover on a call shows the function's signature with parameter types",
           "fn dense(x: f32[N, 4], w: f32[4, 3])" in val, h)
    h = c.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": {"line": 1, "character": 46}})
    val = (((h or {}).get("result") or {}).get("contents") or {}).get("value", "")
    expect("hover on a parameter use shows its annotated type", "parameter x: f32[N, 4]" in val, h)

    dfn = c.request("textDocument/definition", {"textDocument": {"uri": uri}, "position": {"line": 3, "character": 6}})
    r = (dfn or {}).get("result") or {}
    expect("definition of a top-level let jumps to its declaration",
           r.get("uri") == uri and r.get("range", {}).get("start") == {"line": 2, "character": 4}, dfn)
    dfn = c.request("textDocument/definition", {"textDocument": {"uri": uri}, "position": {"line": 3, "character": 14}})
    r = (dfn or {}).get("result") or {}
    expect("definition of a module member jumps into the imported file",
           r.get("uri", "").endswith("/util.tdl") and r.get("range", {}).get("start") == {"line": 2, "character": 3}, dfn)
    h = c.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": {"line": 3, "character": 14}})
    val = (((h or {}).get("result") or {}).get("contents") or {}).get("value", "")
    expect("hover on an imported fn shows its defaults and its doc comment",
           "fn area(side, scale=1.0)" in val and "The area of a square of this side." in val, h)
    h = c.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": {"line": 2, "character": 16}})
    val = (((h or {}).get("result") or {}).get("contents") or {}).get("value", "")
    expect("hover on a builtin shows its signature and description (the reference's entry)",
           "ones(shape, dtype=f32)" in val and "A tensor of ones." in val, h)

    sym = c.request("textDocument/documentSymbol", {"textDocument": {"uri": uri}})
    names = [s["name"] for s in (sym or {}).get("result") or []]
    expect("document symbols list the import, the fn and the let", names == ["geo", "dense", "a"], names)

    comp = c.request("textDocument/completion", {"textDocument": {"uri": uri}, "position": {"line": 3, "character": 13}})
    labels = {i["label"] for i in (comp or {}).get("result") or []}
    expect("completion after `geo.` offers the module's members", {"area", "unit"} <= labels and "dense" not in labels, labels)
    comp = c.request("textDocument/completion", {"textDocument": {"uri": uri}, "position": {"line": 1, "character": 47}})
    labels = {i["label"] for i in (comp or {}).get("result") or []}
    expect("completion in a body offers parameters, top-level names, builtins, keywords",
           {"x", "w", "dense", "a", "geo", "sum", "return"} <= labels, sorted(labels)[:20])
    items = {i["label"]: i for i in (comp or {}).get("result") or []}
    expect("a builtin's completion carries its signature and description",
           items.get("sum", {}).get("detail") == "sum(x, axis=none, keepdims=false)"
           and "Sum over" in items.get("sum", {}).get("documentation", {}).get("value", ""), items.get("sum"))

    fixed = text.replace(", undefined_thing", "")
    c.send("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": fixed}]},
           request=False)
    diag = c.wait_for(lambda m: m.get("method") == "textDocument/publishDiagnostics")
    expect("didChange re-checks: no diagnostics once fixed", diag and diag["params"]["diagnostics"] == [], diag)

    # Positions count UTF-16 units (an emoji is two, é one), the front end's columns code points.
    uni = uri.replace(".tdl", "_uni.tdl")
    ds = c.open_doc(uni, 'let s = "\u00e9\U0001F600"; let zz = s; print(zz, undefined_u)\n')
    expect("a diagnostic after non-ASCII text stands at its UTF-16 column",
           len(ds) == 1 and ds[0]["range"]["start"] == {"line": 0, "character": 37}, ds)
    h = c.request("textDocument/hover", {"textDocument": {"uri": uni}, "position": {"line": 0, "character": 34}})
    r = (h or {}).get("result") or {}
    expect("hover after non-ASCII text finds the name under the cursor and its UTF-16 range",
           "let zz" in r.get("contents", {}).get("value", "") and r.get("range", {}).get("start") == {"line": 0, "character": 33}, h)
    # `nn.` just typed (the document does not parse yet): the module's members.
    dot = uri.replace(".tdl", "_dot.tdl")
    c.open_doc(dot, "import nn\nlet y = nn.\n")
    comp = c.request("textDocument/completion", {"textDocument": {"uri": dot}, "position": {"line": 1, "character": 11}})
    labels = {i["label"] for i in (comp or {}).get("result") or []}
    expect("completion right after `nn.` offers nn's members, not builtins",
           "softmax" in labels and "zeros" not in labels, sorted(labels)[:10])

    # The same with old-Mac line ends (a lone CR ends a line, for the editor as for TDL).
    dotcr = uri.replace(".tdl", "_dotcr.tdl")
    c.open_doc(dotcr, "import nn\rlet y = nn.\r")
    comp = c.request("textDocument/completion", {"textDocument": {"uri": dotcr}, "position": {"line": 1, "character": 11}})
    labels = {i["label"] for i in (comp or {}).get("result") or []}
    expect("completion after `nn.` in a document with lone-CR line ends", "softmax" in labels, sorted(labels)[:10])

    # An error in an imported file (through a chain of two imports): at this document's import,
    # its own place as related information.
    with open(os.path.join(d, "inner.tdl"), "w") as f:
        f.write("let fine = 1\nlet broken = nowhere_v\n")
    with open(os.path.join(d, "middle.tdl"), "w") as f:
        f.write('import "inner.tdl" as inner\nlet m = 2\n')
    imp = uri.replace(".tdl", "_imp.tdl")
    ds = c.open_doc(imp, 'let first = 1\nimport "middle.tdl" as mid\nprint(mid.m)\n')
    rel = (ds[0].get("relatedInformation") or [{}])[0] if ds else {}
    expect("an imported file's error stands at the import that brings it in, its place as related information",
           len(ds) == 1 and ds[0]["range"]["start"] == {"line": 1, "character": 7} and "nowhere_v" in ds[0]["message"]
           and rel.get("location", {}).get("uri", "").endswith("/inner.tdl")
           and rel.get("location", {}).get("range", {}).get("start") == {"line": 1, "character": 13}, ds)

    c.send_raw(b"Content-Length: 9\r\n\r\n{not json")
    err = c.wait_for(lambda m: "error" in m)
    expect("invalid JSON gets a parse error response", err and err["error"]["code"] == -32700, err)
    deep = b"[" * 100000 + b"]" * 100000
    c.send_raw(b"Content-Length: %d\r\n\r\n" % len(deep) + deep)
    err = c.wait_for(lambda m: "error" in m)
    expect("deeply nested JSON is refused, not a crash", err and err["error"]["code"] == -32700, err)
    body = json.dumps({"jsonrpc": "2.0", "id": 9009, "method": 5}).encode()
    c.send_raw(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    err = c.wait_for(lambda m: m.get("id") == 9009)
    expect("a request whose method is not a string is InvalidRequest, with its id",
           err and err.get("error", {}).get("code") == -32600, err)
    bad = c.request("textDocument/hover", {"textDocument": {"uri": uri}})
    expect("a request missing a parameter is InvalidParams, naming the method",
           bad and bad.get("error", {}).get("code") == -32602 and "textDocument/hover" in bad["error"]["message"], bad)
    unk = c.request("textDocument/formatting", {"textDocument": {"uri": uri}})
    expect("an unsupported request gets MethodNotFound", unk and unk.get("error", {}).get("code") == -32601, unk)

    sd = c.request("shutdown")
    expect("shutdown answers null", sd is not None and sd.get("result") is None and "error" not in sd, sd)
    late = c.request("textDocument/hover", {"textDocument": {"uri": uri}, "position": {"line": 0, "character": 0}})
    expect("a request after shutdown is InvalidRequest", late and late.get("error", {}).get("code") == -32600, late)
    c.send("exit", request=False)
    try:
        code = c.p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        c.p.kill()
        code = None
    expect("exit after shutdown ends the server with status 0", code == 0, code)
    print(f"{checks[0] - len(failures)} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
