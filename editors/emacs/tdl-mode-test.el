;;; tdl-mode-test.el --- ERT tests for tdl-mode -*- lexical-binding: t; -*-

;; Run from editors/emacs:
;;   emacs -Q --batch -l tdl-mode.el -l tdl-mode-test.el -f ert-run-tests-batch-and-exit

;;; Code:

(require 'ert)
(require 'tdl-mode)

(defconst tdl-test-sample
  "#!/usr/bin/env tdl
# A comment: let x = 1 \"no string\"
import nn
import \"lib/util.tdl\" as util
let big = 1_000_000 + 1.5 + 1. + .5 + 1e-3 + 2.5E+4
var flags = [true, false, none]
let s = \"tab\\there \\\"q\\\" # not a comment\"
let w: f32[784, 10] = zeros([784, 10], dtype=f32)

graph fn train_step(p, x: f32[N, 3], lr: f32[], y: i64[?]) -> f32[] {
    with tape() as t {
        let loss = mean(nn.cross_entropy(y, x @ p.w + p.b))
    }
    let g = t.gradient(loss, p)
    return tree_map(fn(a, b) => a - lr * b, p, g)
}

fn fact(n) {
    if n <= 1 and not false { return 1 } else { return n * fact(n - 1) }
}

let rec = {w: [1.0, 2.0], b: 0.5}
for i in range(10) {
    if i % 2 == 0 { continue }
    while x.shape[0] > 2 { break }
    print(f\"step {i:>3}|{loss:.4f} {{x}}\", x.sum(1), my_fn(i), xs[a:b])
}
print(f\"loss {d[\"loss\"]:.3f} acc {d[\"acc\"]}\", \"after\")
let s = f\"{\"a\" + b:>8}|{f\"{x}\"} {\"}\"}\" + \"after\"
let m = f\"{ {\"k\": 2}[\"k\"] } {{lit}} {\"q\\\"\\n\"}\" + \"after\"
y[..., 1:3] *= 3.0
let e = x[i, ...] + einsum(\"...ij,...jk->...ik\", a, b)
"
  "Sample program for the font-lock tests.")

(defmacro tdl-test-with-sample (&rest body)
  "Run BODY in a fontified `tdl-mode' buffer holding `tdl-test-sample'."
  (declare (indent 0))
  `(with-temp-buffer
     (insert tdl-test-sample)
     (tdl-mode)
     (font-lock-ensure)
     ,@body))

(defun tdl-test-position (line text &optional nth)
  "Where the NTH (default 1) occurrence of TEXT on LINE starts."
  (save-excursion
    (goto-char (point-min))
    (forward-line (1- line))
    (let ((bound (line-end-position))
          (case-fold-search nil))
      (dotimes (_ (or nth 1))
        (unless (search-forward text bound t)
          (error "%S (#%d) not found on line %d" text (or nth 1) line)))
      (match-beginning 0))))

(defun tdl-test-face-at (line text &optional nth)
  "Faces (a list) at the start of the NTH (default 1) occurrence of TEXT on LINE."
  (let ((face (get-text-property (tdl-test-position line text nth) 'face)))
    (if (listp face) face (list face))))

(defmacro tdl-test-face (line text face &optional nth)
  "Assert that FACE is among the faces of TEXT on LINE."
  `(should (memq ,face (tdl-test-face-at ,line ,text ,nth))))

(defmacro tdl-test-no-face (line text face &optional nth)
  "Assert that FACE is not among the faces of TEXT on LINE."
  `(should-not (memq ,face (tdl-test-face-at ,line ,text ,nth))))

(defun tdl-test-ppss-at (line text &optional nth)
  "`syntax-ppss' at the start of the NTH (default 1) occurrence of TEXT on LINE."
  (syntax-ppss (tdl-test-position line text nth)))

(defun tdl-test-in-string-p (line text &optional nth)
  "Non-nil if the NTH occurrence of TEXT on LINE starts inside a string."
  (nth 3 (tdl-test-ppss-at line text nth)))

(ert-deftest tdl-mode-auto-mode ()
  (should (eq (assoc-default "model.tdl" auto-mode-alist #'string-match) 'tdl-mode))
  (should (eq (cdr (assoc "tdl" interpreter-mode-alist)) 'tdl-mode)))

(ert-deftest tdl-mode-comments ()
  (tdl-test-with-sample
    (tdl-test-face 1 "#!" 'font-lock-preprocessor-face)
    (tdl-test-face 2 "#" 'font-lock-comment-delimiter-face)
    (tdl-test-face 2 "A comment" 'font-lock-comment-face)
    (tdl-test-face 2 "let" 'font-lock-comment-face)
    (tdl-test-no-face 2 "let" 'font-lock-keyword-face)
    (tdl-test-no-face 2 "\"no" 'font-lock-string-face)
    (should (equal comment-start "# "))
    ;; comment-dwim / comment-region use `#'
    (goto-char (point-min))
    (forward-line 2)
    (comment-region (line-beginning-position) (line-end-position))
    (should (string-prefix-p "# import nn" (thing-at-point 'line t)))))

(ert-deftest tdl-mode-keywords-and-constants ()
  (tdl-test-with-sample
    (tdl-test-face 3 "import" 'font-lock-keyword-face)
    (tdl-test-face 3 "nn" 'font-lock-constant-face)
    (tdl-test-face 4 "as" 'font-lock-keyword-face)
    (tdl-test-face 4 "util" 'font-lock-variable-name-face 2)
    (tdl-test-face 5 "let" 'font-lock-keyword-face)
    (tdl-test-face 5 "big" 'font-lock-variable-name-face)
    (tdl-test-face 6 "var" 'font-lock-keyword-face)
    (tdl-test-face 6 "true" 'font-lock-constant-face)
    (tdl-test-face 6 "false" 'font-lock-constant-face)
    (tdl-test-face 6 "none" 'font-lock-constant-face)
    (tdl-test-face 11 "with" 'font-lock-keyword-face)
    (tdl-test-face 11 "as" 'font-lock-keyword-face)
    (tdl-test-face 11 "t {" 'font-lock-variable-name-face)
    (tdl-test-face 15 "return" 'font-lock-keyword-face)
    (tdl-test-face 19 "if" 'font-lock-keyword-face)
    (tdl-test-face 19 "and" 'font-lock-keyword-face)
    (tdl-test-face 19 "not" 'font-lock-keyword-face)
    (tdl-test-face 19 "else" 'font-lock-keyword-face)
    (tdl-test-face 23 "for" 'font-lock-keyword-face)
    (tdl-test-face 23 "in" 'font-lock-keyword-face)
    (tdl-test-face 24 "continue" 'font-lock-keyword-face)
    (tdl-test-face 25 "while" 'font-lock-keyword-face)
    (tdl-test-face 25 "break" 'font-lock-keyword-face)))

(ert-deftest tdl-mode-functions ()
  (tdl-test-with-sample
    (tdl-test-face 10 "graph" 'font-lock-keyword-face)
    (tdl-test-face 10 "fn" 'font-lock-keyword-face)
    (tdl-test-face 10 "train_step" 'font-lock-function-name-face)
    (tdl-test-face 10 "p," 'tdl-parameter-face)
    (tdl-test-face 10 "x:" 'tdl-parameter-face)
    (tdl-test-face 10 "lr" 'tdl-parameter-face)
    (tdl-test-face 10 "y:" 'tdl-parameter-face)
    (tdl-test-face 15 "fn" 'font-lock-keyword-face)
    (tdl-test-face 15 "a," 'tdl-parameter-face)
    (tdl-test-face 15 "b)" 'tdl-parameter-face)
    (tdl-test-face 15 "=>" 'tdl-operator-face)
    (tdl-test-no-face 15 "a -" 'tdl-parameter-face)
    (tdl-test-face 18 "fact" 'font-lock-function-name-face)
    (tdl-test-face 18 "n)" 'tdl-parameter-face)
    (tdl-test-face 19 "fact" 'tdl-function-call-face)
    (tdl-test-face 26 "my_fn" 'tdl-function-call-face)
    (tdl-test-face 14 "gradient" 'tdl-function-call-face)
    (tdl-test-face 12 "cross_entropy" 'tdl-function-call-face)))

(ert-deftest tdl-mode-builtins-and-arguments ()
  (tdl-test-with-sample
    (tdl-test-face 8 "zeros" 'font-lock-builtin-face)
    (tdl-test-face 8 "dtype" 'tdl-parameter-face)
    (tdl-test-face 11 "tape" 'font-lock-builtin-face)
    (tdl-test-face 12 "mean" 'font-lock-builtin-face)
    (tdl-test-face 15 "tree_map" 'font-lock-builtin-face)
    (tdl-test-face 23 "range" 'font-lock-builtin-face)
    (tdl-test-face 26 "print" 'font-lock-builtin-face)
    ;; `x.sum(1)' is a method-style call, not the builtin
    (tdl-test-face 26 "sum" 'tdl-function-call-face)
    (tdl-test-no-face 26 "sum" 'font-lock-builtin-face)))

(ert-deftest tdl-mode-types ()
  (tdl-test-with-sample
    (tdl-test-face 8 "f32" 'font-lock-type-face)
    (tdl-test-face 8 "f32" 'font-lock-type-face 2)
    (tdl-test-face 8 "784" 'tdl-number-face)
    (tdl-test-face 10 "N" 'tdl-dimension-face)
    (tdl-test-face 10 "?" 'tdl-dimension-face)
    (tdl-test-face 10 "i64" 'font-lock-type-face)
    (tdl-test-face 10 "->" 'tdl-operator-face)
    (tdl-test-no-face 26 "a:" 'tdl-dimension-face)))

(ert-deftest tdl-mode-numbers-and-operators ()
  (tdl-test-with-sample
    (tdl-test-face 5 "1_000_000" 'tdl-number-face)
    (tdl-test-face 5 "1.5" 'tdl-number-face)
    (tdl-test-face 5 "1. " 'tdl-number-face)
    (tdl-test-face 5 ".5" 'tdl-number-face)
    (tdl-test-face 5 "1e-3" 'tdl-number-face)
    (tdl-test-face 5 "2.5E+4" 'tdl-number-face)
    (tdl-test-face 5 "+" 'tdl-operator-face)
    (tdl-test-no-face 5 "big" 'tdl-number-face)
    (tdl-test-face 12 "@" 'tdl-operator-face)
    (tdl-test-face 19 "<=" 'tdl-operator-face)
    (tdl-test-face 24 "%" 'tdl-operator-face)
    (tdl-test-face 24 "==" 'tdl-operator-face)))

(ert-deftest tdl-mode-strings ()
  (tdl-test-with-sample
    (tdl-test-face 4 "\"lib" 'font-lock-string-face)
    (tdl-test-face 7 "\"tab" 'font-lock-string-face)
    (tdl-test-face 7 "\\t" 'tdl-escape-face)
    (tdl-test-face 7 "\\\"" 'tdl-escape-face)
    (tdl-test-face 7 "# not" 'font-lock-string-face)
    (tdl-test-no-face 7 "# not" 'font-lock-comment-face)))

(ert-deftest tdl-mode-fstrings ()
  (tdl-test-with-sample
    (tdl-test-face 26 "step" 'font-lock-string-face)
    (tdl-test-face 26 "{i" 'tdl-fstring-delimiter-face)
    (tdl-test-face 26 "i:" 'tdl-fstring-expression-face)
    (tdl-test-no-face 26 "i:" 'font-lock-string-face)
    (tdl-test-face 26 ":>3" 'tdl-format-spec-face)
    (tdl-test-face 26 "}|" 'tdl-fstring-delimiter-face)
    (tdl-test-face 26 "|" 'font-lock-string-face)
    (tdl-test-face 26 "loss" 'tdl-fstring-expression-face)
    (tdl-test-face 26 ":.4f" 'tdl-format-spec-face)
    (tdl-test-face 26 "{{" 'tdl-escape-face)
    (tdl-test-face 26 "x}}" 'font-lock-string-face)
    (tdl-test-no-face 26 "x}}" 'tdl-fstring-expression-face)))

;; Fields holding strings and nested f-strings (Python 3.12): the field ends
;; at its matching `}', the f-string at its own closing quote.
(ert-deftest tdl-mode-fstring-fields-with-strings ()
  (tdl-test-with-sample
    ;; print(f"loss {d["loss"]:.3f} acc {d["acc"]}", "after")
    (tdl-test-face 28 "\"loss\"" 'font-lock-string-face)
    (tdl-test-face 28 "\"loss\"" 'tdl-fstring-expression-face)
    (tdl-test-face 28 "]:" 'tdl-fstring-expression-face)
    (tdl-test-no-face 28 "]:" 'font-lock-string-face)
    (should-not (tdl-test-in-string-p 28 "]:"))
    (tdl-test-face 28 ":.3f" 'tdl-format-spec-face)
    (tdl-test-face 28 "} acc" 'tdl-fstring-delimiter-face)
    (tdl-test-face 28 " acc " 'font-lock-string-face)
    (tdl-test-no-face 28 " acc " 'tdl-fstring-expression-face)
    (should (tdl-test-in-string-p 28 " acc "))
    (tdl-test-face 28 "\"acc\"" 'font-lock-string-face)
    (tdl-test-face 28 "\"acc\"" 'tdl-fstring-expression-face)
    (tdl-test-face 28 "}\"," 'tdl-fstring-delimiter-face)
    (tdl-test-face 28 "\", \"" 'font-lock-string-face)
    (tdl-test-no-face 28 ", \"after" 'font-lock-string-face)
    (should-not (tdl-test-in-string-p 28 ", \"after"))
    (tdl-test-face 28 "\"after" 'font-lock-string-face)
    (tdl-test-no-face 28 "\"after" 'tdl-fstring-expression-face)
    (should (= 1 (nth 0 (tdl-test-ppss-at 28 ")"))))   ; only `print(' is open
    ;; let s = f"{"a" + b:>8}|{f"{x}"} {"}"}" + "after"
    (tdl-test-face 29 "\"a\"" 'font-lock-string-face)
    (tdl-test-face 29 "\"a\"" 'tdl-fstring-expression-face)
    (tdl-test-face 29 "+" 'tdl-operator-face)
    (tdl-test-face 29 "b:" 'tdl-fstring-expression-face)
    (tdl-test-no-face 29 "b:" 'font-lock-string-face)
    (tdl-test-face 29 ":>8" 'tdl-format-spec-face)
    (tdl-test-face 29 "|" 'font-lock-string-face)
    (tdl-test-no-face 29 "|" 'tdl-fstring-expression-face)
    (tdl-test-face 29 "f\"{x" 'tdl-fstring-expression-face)
    (tdl-test-face 29 "{x" 'tdl-fstring-delimiter-face)
    (tdl-test-face 29 "x}" 'tdl-fstring-expression-face)
    (tdl-test-face 29 "\"}\"" 'font-lock-string-face)
    (tdl-test-face 29 "\"}\"" 'tdl-fstring-expression-face)
    (tdl-test-face 29 "}\" +" 'tdl-fstring-delimiter-face)
    (tdl-test-face 29 "\" + \"after" 'font-lock-string-face)
    (tdl-test-face 29 "+ \"after" 'tdl-operator-face)
    (tdl-test-no-face 29 "+ \"after" 'font-lock-string-face)
    (tdl-test-face 29 "\"after" 'font-lock-string-face)
    (tdl-test-no-face 29 "\"after" 'tdl-fstring-expression-face)
    ;; let m = f"{ {"k": 2}["k"] } {{lit}} {"q\"\n"}" + "after"
    (tdl-test-face 30 "{\"k\"" 'tdl-fstring-expression-face)
    (tdl-test-no-face 30 "{\"k\"" 'tdl-fstring-delimiter-face)
    (tdl-test-face 30 "\"k\"" 'font-lock-string-face)
    (tdl-test-face 30 "2}" 'tdl-number-face)
    (tdl-test-face 30 "\"k\"" 'font-lock-string-face 2)
    (tdl-test-face 30 "} {{" 'tdl-fstring-delimiter-face)
    (tdl-test-face 30 "{{" 'tdl-escape-face)
    (tdl-test-face 30 "lit" 'font-lock-string-face)
    (tdl-test-no-face 30 "lit" 'tdl-fstring-expression-face)
    (tdl-test-face 30 "\\\"" 'tdl-escape-face)
    (tdl-test-face 30 "\\n" 'tdl-escape-face)
    (tdl-test-face 30 "\" + \"after" 'font-lock-string-face)
    (tdl-test-no-face 30 "+ \"after" 'font-lock-string-face)
    (tdl-test-no-face 30 "\"after" 'tdl-fstring-expression-face)
    (should (= 0 (nth 0 (tdl-test-ppss-at 31 "y["))))))

(ert-deftest tdl-mode-fstring-unclosed ()
  (with-temp-buffer
    ;; an f-string left open ends at the end of its line; so does an open field
    (insert "let t = f\"{x} abc\nlet n = 1\nlet o = f\"{x + \"y\"\nlet p = 2\n")
    (tdl-mode)
    (font-lock-ensure)
    (tdl-test-face 1 "abc" 'font-lock-string-face)
    (tdl-test-face 2 "let" 'font-lock-keyword-face)
    (tdl-test-no-face 2 "let" 'font-lock-string-face)
    (tdl-test-face 3 "\"y\"" 'font-lock-string-face)
    (tdl-test-face 4 "let" 'font-lock-keyword-face)
    (tdl-test-no-face 4 "let" 'font-lock-string-face)))

(ert-deftest tdl-mode-fstring-refontify-after-edit ()
  (with-temp-buffer
    (insert "let a = f\"{x} {d[\"k\"]}\" + \"b\"\n")
    (tdl-mode)
    (font-lock-ensure)
    (tdl-test-face 1 "\"k\"" 'tdl-fstring-expression-face)
    (tdl-test-face 1 "+" 'tdl-operator-face)
    ;; `{x}' -> `x': the first field goes, the second stays a field
    (goto-char (point-min))
    (search-forward "{x}")
    (replace-match "x")
    (font-lock-ensure)
    (tdl-test-face 1 "x " 'font-lock-string-face)
    (tdl-test-no-face 1 "x " 'tdl-fstring-expression-face)
    (tdl-test-face 1 "\"k\"" 'tdl-fstring-expression-face)
    (tdl-test-face 1 "\"b" 'font-lock-string-face)
    (tdl-test-no-face 1 "+" 'font-lock-string-face)))

(ert-deftest tdl-mode-ellipsis ()
  (tdl-test-with-sample
    (tdl-test-face 31 "..." 'tdl-operator-face)
    (tdl-test-no-face 31 "..." 'tdl-number-face)
    (tdl-test-face 31 "1:3" 'tdl-number-face)
    (tdl-test-face 31 "*=" 'tdl-operator-face)
    (tdl-test-face 32 "...]" 'tdl-operator-face)
    (tdl-test-face 32 "...ij" 'font-lock-string-face)
    (tdl-test-no-face 32 "...ij" 'tdl-operator-face)))

(ert-deftest tdl-mode-records-and-fields ()
  (tdl-test-with-sample
    (tdl-test-face 22 "w:" 'tdl-field-face)
    (tdl-test-face 22 "b:" 'tdl-field-face)
    (tdl-test-face 12 "w " 'tdl-field-face)
    (tdl-test-face 12 "b)" 'tdl-field-face)
    (tdl-test-face 25 "shape" 'tdl-field-face)
    ;; a slice `xs[a:b]' is no record
    (tdl-test-no-face 26 "a:b" 'tdl-field-face)))

(defconst tdl-test-indent-expected
  "graph fn collatz_steps(n: i64[]) {
    var steps = 0
    while n != 1 {
        if n % 2 == 0 { n = n // 2 } else { n = 3 * n + 1 }
        steps += 1
    }
    return steps
}

fn fact(n) {
    if n <= 1 {
        return 1
    } else {
        return n * fact(n - 1)
    }
}

let params = {
    w: zeros([3, 2]),
    b: zeros([2]),
}
let xs = [
    1, 2,
    3,
]
let y = f(a,
    b)
print(\"{ not a brace\", f\"{x}\")  # { nor this
with tape() as t {
    let loss = mean(params.w)
}
"
  "Correctly indented code.")

(ert-deftest tdl-mode-indentation ()
  (with-temp-buffer
    ;; the same code with every line flush left, or indented wrongly
    (insert (replace-regexp-in-string "^ +" "" tdl-test-indent-expected))
    (goto-char (point-min))
    (forward-line 2)
    (insert "        ")
    (tdl-mode)
    (indent-region (point-min) (point-max))
    (should (equal (buffer-string) tdl-test-indent-expected))))

(ert-deftest tdl-mode-indent-offset ()
  (with-temp-buffer
    (insert "fn f(x) {\nreturn x\n}\n")
    (tdl-mode)
    (setq-local tdl-indent-offset 2)
    (indent-region (point-min) (point-max))
    (should (equal (buffer-string) "fn f(x) {\n  return x\n}\n"))))

;; Debian's elpa-eglot lives outside `load-path' under `emacs -Q'.
(unless (locate-library "eglot")
  (dolist (dir (file-expand-wildcards "/usr/share/emacs/site-lisp/elpa/*"))
    (add-to-list 'load-path dir t)))

(declare-function eglot--guess-contact "eglot")
(defvar eglot-server-programs)

(ert-deftest tdl-mode-eglot-entry ()
  (should (equal (tdl--eglot-contact) '("tdl" "lsp")))
  (unless (require 'eglot nil t)
    (ert-skip "eglot is not installed"))
  (should (eq (cdr (assq 'tdl-mode eglot-server-programs)) 'tdl--eglot-contact))
  (with-temp-buffer
    (setq buffer-file-name (expand-file-name "eglot-test.tdl" temporary-file-directory))
    (tdl-mode)
    ;; (MANAGED-MODES PROJECT CLASS CONTACT LANGUAGE-ID)
    (let ((guess (eglot--guess-contact)))
      (should (equal (nth 3 guess) '("tdl" "lsp"))))
    (set-buffer-modified-p nil)))

(provide 'tdl-mode-test)
;;; tdl-mode-test.el ends here
