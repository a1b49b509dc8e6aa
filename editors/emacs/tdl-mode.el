;;; tdl-mode.el --- Major mode for the TDL tensor language -*- lexical-binding: t; -*-

;; Version: 0.1.0
;; Package-Requires: ((emacs "27.1"))
;; Keywords: languages
;; URL: editors/emacs in the TDL repository

;;; Commentary:

;; Major mode for editing TDL programs (*.tdl): syntax highlighting
;; (keywords, `graph fn', dtypes and tensor annotations such as
;; `f32[N, ?]', numbers, strings and f-strings with their replacement
;; fields, operators, function definitions and calls, builtins, record
;; fields, parameters), brace-based indentation, comment commands, and an
;; entry for the `tdl lsp' language server in `eglot-server-programs'.
;;
;; Setup:
;;   (add-to-list 'load-path "/path/to/tdl/editors/emacs")
;;   (require 'tdl-mode)
;;   (add-hook 'tdl-mode-hook #'eglot-ensure)   ; optional, needs eglot

;;; Code:

(require 'subr-x)

(defgroup tdl nil
  "Major mode for the TDL tensor language."
  :group 'languages
  :prefix "tdl-")

(defcustom tdl-indent-offset 4
  "Number of columns for one level of indentation in `tdl-mode'."
  :type 'integer
  :safe #'integerp)

(defcustom tdl-lsp-program '("tdl" "lsp")
  "Command line of the TDL language server, used by the eglot entry."
  :type '(repeat string))

;;;; Faces

(defmacro tdl--face-fallback (new old)
  "NEW if it is a face (newer Emacsen), else OLD."
  `(if (facep ',new) ',new ',old))

(defface tdl-number-face
  `((t :inherit ,(tdl--face-fallback font-lock-number-face font-lock-constant-face)))
  "Face for numeric literals.")

(defface tdl-operator-face
  `((t :inherit ,(tdl--face-fallback font-lock-operator-face default)))
  "Face for operators such as `@', `**', `//', `=>', `->'.")

(defface tdl-escape-face
  `((t :inherit ,(tdl--face-fallback font-lock-escape-face font-lock-constant-face)))
  "Face for escapes in strings (\\n, \\t, \\\", \\\\) and {{ }} in f-strings.")

(defface tdl-function-call-face
  `((t :inherit ,(tdl--face-fallback font-lock-function-call-face font-lock-function-name-face)))
  "Face for the name of a called function.")

(defface tdl-field-face
  `((t :inherit ,(tdl--face-fallback font-lock-property-use-face font-lock-variable-name-face)))
  "Face for record fields: `r.w' and the keys of `{w: ...}'.")

(defface tdl-parameter-face
  '((t :inherit font-lock-variable-name-face))
  "Face for parameter names in `fn' declarations and lambdas, and keyword arguments.")

(defface tdl-dimension-face
  '((t :inherit font-lock-type-face :slant italic))
  "Face for named dimensions and `?' in tensor annotations such as `f32[N, ?]'.")

(defface tdl-fstring-delimiter-face
  '((t :inherit font-lock-preprocessor-face))
  "Face for the braces around a replacement field of an f-string.")

(defface tdl-fstring-expression-face
  '((t :inherit default))
  "Face for the expression inside a replacement field of an f-string.")

(defface tdl-format-spec-face
  '((t :inherit font-lock-constant-face))
  "Face for the format spec of an f-string replacement field, `:.4f'.")

;;;; Syntax

(defconst tdl-control-keywords
  '("if" "else" "while" "for" "in" "return" "break" "continue"))

(defconst tdl-declaration-keywords
  '("fn" "graph" "let" "var" "import" "as" "with" "type"))

(defconst tdl-operator-keywords '("and" "or" "not"))

(defconst tdl-constants '("true" "false" "none"))

(defconst tdl-dtypes '("bool" "i32" "i64" "f32" "f64"))

(defconst tdl-builtins
  '("zeros" "ones" "full" "zeros_like" "ones_like" "arange" "linspace" "eye" "seed" "rand"
    "randn" "randint" "permutation" "pow" "maximum" "minimum" "leaky_relu" "elu" "abs" "exp"
    "expm1" "log" "log1p" "log2" "log10" "sqrt" "rsqrt" "sin" "cos" "tanh" "erf" "sigmoid"
    "softplus" "silu" "relu" "floor" "ceil" "sign" "square" "isnan" "isfinite" "clip" "where"
    "cast" "sum" "mean" "max" "min" "prod" "all" "any" "argmax" "argmin" "logsumexp" "einsum"
    "cumsum" "cumprod" "argsort" "round" "std" "norm" "allclose" "tril" "triu" "split" "sort"
    "topk" "conv2d" "conv1d" "conv2d_transpose" "max_pool2d" "avg_pool2d" "matmul" "transpose"
    "dot" "outer" "reshape" "expand_dims" "squeeze" "concat" "stack" "broadcast_to" "flatten"
    "take" "one_hot" "tile" "pad" "tree_map" "tree_leaves" "tape" "grad" "value_and_grad"
    "print" "str" "repr" "format" "set_printoptions" "load_npy" "save_npy" "load_csv" "save"
    "load" "load_model" "assert" "len" "range" "enumerate" "zip" "reversed" "list" "tuple"
    "sorted" "int" "float" "time" "args" "exit" "progress" "plot" "help")
  "Builtin functions of SPEC §5.")

(defvar tdl-mode-syntax-table
  (let ((st (make-syntax-table)))
    (modify-syntax-entry ?# "<" st)
    (modify-syntax-entry ?\n ">" st)
    (modify-syntax-entry ?\" "\"" st)
    (modify-syntax-entry ?\\ "\\" st)
    (modify-syntax-entry ?' "." st)
    (modify-syntax-entry ?_ "_" st)
    (dolist (c '(?+ ?- ?* ?/ ?% ?@ ?& ?| ?~ ?< ?> ?= ?! ?? ?: ?, ?\; ?.))
      (modify-syntax-entry c "." st))
    (modify-syntax-entry ?\( "()" st)
    (modify-syntax-entry ?\) ")(" st)
    (modify-syntax-entry ?\[ "(]" st)
    (modify-syntax-entry ?\] ")[" st)
    (modify-syntax-entry ?\{ "(}" st)
    (modify-syntax-entry ?\} "){" st)
    st)
  "Syntax table for `tdl-mode': `#' comments, double-quoted strings.")

(defconst tdl--identifier "[A-Za-z_][A-Za-z0-9_]*")

(defconst tdl--number-regexp
  (let* ((digits "[0-9]\\(?:_?[0-9]\\)*")
         (exp (concat "[eE][-+]?" digits)))
    (concat "\\(?:^\\|[^A-Za-z0-9_.]\\)\\("
            digits "\\.\\(?:" digits "\\)?\\(?:" exp "\\)?"   ; 1.0 1. 1.5e3
            "\\|\\." digits "\\(?:" exp "\\)?"                 ; .5
            "\\|" digits "\\(?:" exp "\\)?"                    ; 42 1e-3 1_000
            "\\)"))
  "Numeric literal, in group 1.")

;;;; Font-lock helpers

(defun tdl--ppss (pos)
  "`syntax-ppss' at POS, leaving point alone."
  (save-excursion (syntax-ppss pos)))

(defun tdl--in-code-p (&optional pos)
  "Non-nil if POS (default point) is outside strings and comments."
  (let ((ppss (tdl--ppss (or pos (point)))))
    (not (or (nth 3 ppss) (nth 4 ppss)))))

(defun tdl--innermost-open (pos)
  "Position of the innermost bracket open at POS, or nil."
  (nth 1 (tdl--ppss pos)))

(defun tdl--params-open-p (open)
  "Non-nil if the paren at OPEN starts the parameters of `fn NAME(' or `fn('."
  (and open (eq (char-after open) ?\()
       (save-excursion
         (goto-char open)
         (skip-chars-backward " \t")
         (when (looking-back tdl--identifier (line-beginning-position) t)
           (goto-char (match-beginning 0))
           (or (looking-at "fn\\_>")
               (progn (skip-chars-backward " \t")
                      (looking-back "\\_<fn" (line-beginning-position))))))))

(defun tdl--after-separator-p (pos)
  "Non-nil if only blanks separate POS from line start or `(', `[', `{', `,'."
  (save-excursion
    (goto-char pos)
    (skip-chars-backward " \t")
    (or (bolp) (memq (char-before) '(?\( ?\[ ?\{ ?,)))))

(defun tdl--search-names (limit predicate)
  "Find the next identifier before LIMIT for which PREDICATE is non-nil.
PREDICATE is called with the start and end of the name; on success the
match data hold the name as group 1.  Return non-nil when one was found."
  (let (found)
    (while (and (not found)
                (re-search-forward (concat "\\_<\\(" tdl--identifier "\\)\\_>") limit t))
      (let ((beg (match-beginning 1))
            (end (match-end 1)))
        (when (and (tdl--in-code-p beg)
                   (save-match-data (funcall predicate beg end)))
          (set-match-data (list beg end beg end))
          (setq found t))))
    found))

(defun tdl--match-parameter (limit)
  "Font-lock matcher for parameter names of `fn' declarations and lambdas."
  (tdl--search-names
   limit
   (lambda (beg _end)
     (and (tdl--after-separator-p beg)
          (tdl--params-open-p (tdl--innermost-open beg))))))

(defun tdl--match-keyword-argument (limit)
  "Font-lock matcher for keyword arguments of calls, `sum(x, axis=0)'."
  (tdl--search-names
   limit
   (lambda (beg end)
     (let ((open (tdl--innermost-open beg)))
       (and open (eq (char-after open) ?\()
            (not (tdl--params-open-p open))
            (tdl--after-separator-p beg)
            (save-excursion (goto-char end)
                            (looking-at "[ \t]*=[^=]")))))))

(defun tdl--match-record-key (limit)
  "Font-lock matcher for record keys, `{w: ...}', also in record types."
  (tdl--search-names
   limit
   (lambda (beg end)
     (let ((open (tdl--innermost-open beg)))
       (and open (eq (char-after open) ?\{)
            (tdl--after-separator-p beg)
            (save-excursion (goto-char end)
                            (looking-at "[ \t]*:")))))))

(defun tdl--match-dimension (limit)
  "Font-lock matcher for named dims and `?' inside `f32[...]' annotations."
  (let (found)
    (while (and (not found)
                (re-search-forward (concat "\\(" tdl--identifier "\\|\\?\\)") limit t))
      (let* ((beg (match-beginning 1))
             (end (match-end 1))
             (open (tdl--innermost-open beg)))
        (when (and (tdl--in-code-p beg)
                   open (eq (char-after open) ?\[)
                   (save-excursion
                     (goto-char open)
                     (skip-chars-backward " \t")
                     (looking-back (concat "\\_<" (regexp-opt tdl-dtypes))
                                   (line-beginning-position))))
          (set-match-data (list beg end beg end))
          (setq found t))))
    found))

;;;; F-strings

;; A field of an f-string is code and may hold strings and nested f-strings
;; (as in Python 3.12): f"loss {d["loss"]:.3f}", f"{f"{x}"} {"}"}".
;; `tdl-syntax-propertize' gives an f-string's quotes and its fields'
;; delimiters string-fence syntax: the text part ends at a field's `{', the
;; expression is code (so its strings are ordinary strings and its brackets
;; nest), and the text resumes at the `:' of a format spec or at the
;; closing `}'.  It records each field on its `{' (text property
;; `tdl-fstring-field', (EXPR-END . CLOSE)) and marks `{{' and `}}'
;; (`tdl-fstring-brace') for font-lock.  F-strings are one line: one that is
;; still in a text part at the end of the line ends there.

(defconst tdl--string-fence (string-to-syntax "|"))
(defconst tdl--punctuation (string-to-syntax "."))

(defvar tdl--fstring-eol-in-string nil
  "Set by the f-string scanners: whether the line ended inside a text part.")

(defun tdl--fence (pos)
  "Give the character at POS string-fence syntax."
  (put-text-property pos (1+ pos) 'syntax-table tdl--string-fence))

(defun tdl--fstring-prefix-p (q)
  "Non-nil if the `\"' at Q follows an `f' that starts a symbol."
  (and (eq (char-before q) ?f)
       (not (memq (char-syntax (or (char-before (1- q)) ?\s)) '(?w ?_)))))

(defun tdl--scan-plain-string (q eol)
  "Skip the ordinary string (inside a field) whose `\"' is at Q.
Return the position after it, or nil when it is unclosed at EOL."
  (let ((p (1+ q)) (result 'scan))
    (while (eq result 'scan)
      (let ((c (and (< p eol) (char-after p))))
        (cond
         ((null c)
          (tdl--fence q)            ; so that the end of the line closes it
          (setq tdl--fstring-eol-in-string t result nil))
         ((eq c ?\\) (setq p (+ p 2)))
         ((eq c ?\") (setq result (1+ p)))
         (t (setq p (1+ p))))))
    result))

(defun tdl--scan-fstring (q eol)
  "Propertize the f-string whose opening `\"' is at Q (after its `f').
Return the position after its closing `\"', or nil when the line (EOL)
ends first."
  (tdl--fence q)
  (let ((p (1+ q)) (result 'scan))
    (while (eq result 'scan)
      (let ((c (and (< p eol) (char-after p))))
        (cond
         ((null c) (setq tdl--fstring-eol-in-string t result nil))
         ((eq c ?\\) (setq p (+ p 2)))
         ((eq c ?\") (tdl--fence p) (setq result (1+ p)))
         ((and (memq c '(?{ ?})) (eq (char-after (1+ p)) c) (< (1+ p) eol))
          (put-text-property p (+ p 2) 'tdl-fstring-brace t)
          (setq p (+ p 2)))
         ((eq c ?{)
          (setq p (tdl--scan-fstring-field p eol))
          (unless p (setq result nil)))
         (t (setq p (1+ p))))))
    result))

(defun tdl--scan-fstring-field (open eol)
  "Propertize the field of an f-string whose `{' is at OPEN.
The field ends at its matching `}'; a format spec follows the first `:'
outside brackets and strings.  Return the position after the `}', or nil
when the line (EOL) ends first."
  (tdl--fence open)
  (let ((p (1+ open)) (depth 0) (result 'scan))
    (while (eq result 'scan)
      (let ((c (and (< p eol) (char-after p))))
        (cond
         ((null c) (setq tdl--fstring-eol-in-string nil result nil))
         ((eq c ?\")
          (setq p (if (tdl--fstring-prefix-p p)
                      (tdl--scan-fstring p eol)
                    (tdl--scan-plain-string p eol)))
          (unless p (setq result nil)))
         ((memq c '(?\( ?\[ ?\{)) (setq depth (1+ depth) p (1+ p)))
         ((and (memq c '(?\) ?\] ?\})) (> depth 0)) (setq depth (1- depth) p (1+ p)))
         ((eq c ?})
          (tdl--fence p)
          (put-text-property open (1+ open) 'tdl-fstring-field (cons p p))
          (setq result (1+ p)))
         ((and (eq c ?:) (= depth 0))
          (tdl--fence p)
          (setq result (tdl--scan-format-spec open p eol)))
         (t
          ;; no comments in a field; a stray `)' or `]' closes nothing
          (when (memq c '(?# ?\) ?\]))
            (put-text-property p (1+ p) 'syntax-table tdl--punctuation))
          (setq p (1+ p))))))
    result))

(defun tdl--scan-format-spec (open colon eol)
  "Scan the format spec at COLON of the field opened at OPEN (text again).
Return the position after the field's `}', nil when the line (EOL) ends
first, or the position of a `\"' that ends the f-string inside the spec."
  (let ((p (1+ colon)) (result 'scan))
    (while (eq result 'scan)
      (let ((c (and (< p eol) (char-after p))))
        (cond
         ((null c) (setq tdl--fstring-eol-in-string t result nil))
         ((eq c ?})
          (put-text-property open (1+ open) 'tdl-fstring-field (cons colon p))
          (setq result (1+ p)))
         ((eq c ?{)                       ; a nested field: {x:{width}}
          (setq p (tdl--scan-fstring-field p eol))
          (unless p (setq result nil)))
         ((eq c ?\") (setq result p))
         ((eq c ?\\) (setq p (+ p 2)))
         (t (setq p (1+ p))))))
    result))

(defun tdl-syntax-propertize (start end)
  "Set the syntax of the f-strings that start between START and END.
See the comment above `tdl--string-fence'."
  (remove-list-of-text-properties start end '(tdl-fstring-field tdl-fstring-brace))
  (goto-char start)
  (while (re-search-forward "\\_<f\"" end t)
    (let ((q (1- (point))))
      (unless (nth 8 (save-excursion (syntax-ppss (1- q)))) ; `f' in a string/comment
        (let* ((eol (line-end-position))
               (tdl--fstring-eol-in-string nil)
               (after (tdl--scan-fstring q eol)))
          (if after
              (goto-char after)
            (when (and tdl--fstring-eol-in-string (< eol (point-max)))
              (tdl--fence eol))           ; the newline ends the unclosed text part
            (goto-char (min (1+ eol) (point-max)))))))))

(defun tdl--match-fstring-brace-escape (limit)
  "Font-lock matcher for `{{' and `}}' inside f-strings."
  (syntax-propertize limit)
  (let ((beg (text-property-any (point) limit 'tdl-fstring-brace t)))
    (when beg
      (let ((end (next-single-property-change beg 'tdl-fstring-brace nil limit)))
        (set-match-data (list beg end))
        (goto-char end)
        t))))

(defun tdl--match-fstring-field (limit)
  "Font-lock matcher for a field `{expr}' / `{expr:spec}' of an f-string.
Groups: 1 `{', 2 expression, 3 format spec (with its `:'), 4 `}'."
  (syntax-propertize limit)
  (let ((open (text-property-not-all (point) limit 'tdl-fstring-field nil)))
    (when open
      (let* ((field (get-text-property open 'tdl-fstring-field))
             (expr-end (car field))
             (close (cdr field)))
        (set-match-data (list open (1+ close)
                              open (1+ open)
                              (1+ open) expr-end
                              expr-end close
                              close (1+ close)))
        ;; on from inside the field: it may hold nested f-strings
        (goto-char (1+ open))
        t))))

(defun tdl--match-string-escape (limit)
  "Font-lock matcher for escapes inside strings, group 0."
  (let (found)
    (while (and (not found) (re-search-forward "\\\\[nt\"\\\\]" limit t))
      (let ((beg (match-beginning 0)) (end (match-end 0)))
        (when (nth 3 (tdl--ppss beg))
          (set-match-data (list beg end))
          (setq found t))))
    found))

;;;; Font-lock keywords

(defconst tdl-font-lock-keywords
  `(;; shebang on the first line (already a comment; make it stand out)
    ("\\`#!.*$" 0 font-lock-preprocessor-face t)
    ;; `graph fn NAME' and `fn NAME'
    (,(concat "\\_<\\(graph\\)\\s-+\\(fn\\)\\s-+\\(" tdl--identifier "\\)")
     (1 font-lock-keyword-face) (2 font-lock-keyword-face) (3 font-lock-function-name-face))
    (,(concat "\\_<\\(fn\\)\\s-+\\(" tdl--identifier "\\)")
     (1 font-lock-keyword-face) (2 font-lock-function-name-face))
    ;; `let x' / `var x'
    (,(concat "\\_<\\(let\\|var\\)\\s-+\\(" tdl--identifier "\\)")
     (1 font-lock-keyword-face) (2 font-lock-variable-name-face))
    ;; `import "f.tdl" as name', `with tape() as t'
    (,(concat "\\_<\\(as\\)\\s-+\\(" tdl--identifier "\\)")
     (1 font-lock-keyword-face) (2 font-lock-variable-name-face))
    (,(concat "\\_<\\(import\\)\\s-+\\(" tdl--identifier "\\)")
     (1 font-lock-keyword-face) (2 font-lock-constant-face))
    (,(regexp-opt tdl-control-keywords 'symbols) . font-lock-keyword-face)
    (,(regexp-opt tdl-declaration-keywords 'symbols) . font-lock-keyword-face)
    (,(regexp-opt tdl-operator-keywords 'symbols) . font-lock-keyword-face)
    (,(regexp-opt tdl-constants 'symbols) . font-lock-constant-face)
    (,(regexp-opt tdl-dtypes 'symbols) . font-lock-type-face)
    ;; parameters, keyword arguments, record keys, dims
    (tdl--match-parameter (1 'tdl-parameter-face))
    (tdl--match-keyword-argument (1 'tdl-parameter-face))
    (tdl--match-record-key (1 'tdl-field-face))
    (tdl--match-dimension (1 'tdl-dimension-face))
    ;; `x.f(' method / module calls, `r.w' fields
    (,(concat "\\.\\s-*\\(" tdl--identifier "\\)\\s-*(") (1 'tdl-function-call-face))
    (,(concat "\\.\\s-*\\(" tdl--identifier "\\)") (1 'tdl-field-face))
    ;; builtins, then other calls
    (,(concat "\\(?:^\\|[^.A-Za-z0-9_]\\)\\(" (regexp-opt tdl-builtins) "\\)\\_>")
     (1 font-lock-builtin-face))
    (,(concat "\\_<\\(" tdl--identifier "\\)\\s-*(") (1 'tdl-function-call-face))
    ;; numbers
    (,tdl--number-regexp (1 'tdl-number-face))
    ;; operators (longest first), and the ellipsis of `x[..., 0]'
    (,(regexp-opt '("..." "->" "=>" "**" "//" "==" "!=" "<=" ">=" "+=" "-=" "*=" "/="
                    "<" ">" "=" "+" "-" "*" "/" "%" "@" "&" "|" "~"))
     . 'tdl-operator-face)
    ;; inside strings (override the string face)
    (tdl--match-string-escape (0 'tdl-escape-face t))
    (tdl--match-fstring-brace-escape (0 'tdl-escape-face t))
    (tdl--match-fstring-field
     (1 'tdl-fstring-delimiter-face t)
     (2 'tdl-fstring-expression-face append)  ; its strings stay strings
     (3 'tdl-format-spec-face t t)
     (4 'tdl-fstring-delimiter-face t)))
  "Font-lock keywords for `tdl-mode'.")

;;;; Indentation

(defun tdl--line-starts-with-closer-p ()
  "Non-nil if the current line starts with `}', `)' or `]'."
  (save-excursion
    (back-to-indentation)
    (memq (char-after) '(?\} ?\) ?\]))))

(defun tdl-calculate-indentation ()
  "Column the current line should be indented to.
One `tdl-indent-offset' more than the line of the innermost open bracket;
a line starting with a closing bracket lines up with that line."
  (save-excursion
    (back-to-indentation)
    (let* ((ppss (syntax-ppss (line-beginning-position)))
           (open (nth 1 ppss)))
      (cond
       ((nth 3 ppss) (current-indentation))     ; never happens: strings are one line
       ((null open) 0)
       (t (let ((base (save-excursion (goto-char open) (current-indentation))))
            (if (tdl--line-starts-with-closer-p)
                base
              (+ base tdl-indent-offset))))))))

(defun tdl-indent-line ()
  "Indent the current line of TDL code."
  (interactive)
  (let ((column (tdl-calculate-indentation))
        (offset (- (current-column) (current-indentation))))
    (indent-line-to column)
    (when (> offset 0) (forward-char offset))))

;;;; Mode

;;;###autoload
(define-derived-mode tdl-mode prog-mode "TDL"
  "Major mode for editing TDL tensor-language programs.

\\{tdl-mode-map}"
  :syntax-table tdl-mode-syntax-table
  :group 'tdl
  (setq-local comment-start "# ")
  (setq-local comment-start-skip "#+\\s-*")
  (setq-local comment-end "")
  (setq-local comment-use-syntax t)
  (setq-local font-lock-defaults '(tdl-font-lock-keywords nil nil))
  (setq-local syntax-propertize-function #'tdl-syntax-propertize)
  (setq-local indent-line-function #'tdl-indent-line)
  (setq-local indent-tabs-mode nil)
  (setq-local tab-width 8)
  (setq-local electric-indent-chars (append '(?\} ?\) ?\]) electric-indent-chars))
  (setq-local electric-pair-pairs '((?\" . ?\") (?\{ . ?\}) (?\[ . ?\]) (?\( . ?\))))
  (setq-local parse-sexp-ignore-comments t))

;;;###autoload
(add-to-list 'auto-mode-alist '("\\.tdl\\'" . tdl-mode))
;;;###autoload
(add-to-list 'interpreter-mode-alist '("tdl" . tdl-mode))

;;;; Language server (eglot)

(defun tdl--eglot-contact (&optional _interactive)
  "The `tdl lsp' command line for eglot."
  tdl-lsp-program)

;;;###autoload
(with-eval-after-load 'eglot
  (defvar eglot-server-programs)
  (add-to-list 'eglot-server-programs '(tdl-mode . tdl--eglot-contact)))

(provide 'tdl-mode)
;;; tdl-mode.el ends here
