" Vim syntax file
" Language:   TDL (tensor language), SPEC §1–§5
" Filenames:  *.tdl

if exists('b:current_syntax')
  finish
endif
let s:cpo_save = &cpoptions
set cpoptions&vim

syn case match
" Blocks may span a whole file; files are small.
syn sync fromstart

" --- comments ------------------------------------------------------------
syn keyword tdlTodo        TODO FIXME XXX NOTE contained
syn match   tdlComment     "#.*$" contains=tdlTodo,@Spell
syn match   tdlShebang     "\%^#!.*$"

" --- keywords ------------------------------------------------------------
syn keyword tdlConditional if else
syn keyword tdlRepeat      while for in
syn keyword tdlStatement   return break continue
syn keyword tdlOperatorWord and or not
syn keyword tdlBoolean     true false
syn keyword tdlNone        none
syn keyword tdlInclude     import nextgroup=tdlModule skipwhite
syn keyword tdlWith        with
syn keyword tdlAs          as nextgroup=tdlAlias skipwhite
syn keyword tdlDeclare     let var nextgroup=tdlVarName skipwhite
syn keyword tdlDeclare     type
syn keyword tdlGraph       graph
syn keyword tdlFn          fn nextgroup=tdlFuncName,tdlParams skipwhite
syn match   tdlModule      "\h\w*" contained
syn match   tdlAlias       "\h\w*" contained
syn match   tdlVarName     "\h\w*" contained
syn match   tdlFuncName    "\h\w*" contained nextgroup=tdlParams skipwhite

" --- builtins (SPEC §5) --------------------------------------------------
syn keyword tdlBuiltin zeros ones full zeros_like ones_like arange linspace eye seed rand randn
syn keyword tdlBuiltin randint permutation pow maximum minimum leaky_relu elu abs exp expm1 log
syn keyword tdlBuiltin log1p log2 log10 sqrt rsqrt sin cos tanh erf sigmoid softplus silu relu
syn keyword tdlBuiltin floor ceil sign square isnan isfinite clip where cast sum mean max min
syn keyword tdlBuiltin prod all any argmax argmin logsumexp einsum cumsum cumprod argsort round
syn keyword tdlBuiltin std norm allclose tril triu split sort topk conv2d conv1d
syn keyword tdlBuiltin conv2d_transpose max_pool2d avg_pool2d matmul transpose dot outer reshape
syn keyword tdlBuiltin expand_dims squeeze concat stack broadcast_to flatten take one_hot tile
syn keyword tdlBuiltin pad tree_map tree_leaves tape grad value_and_grad print str repr format
syn keyword tdlBuiltin set_printoptions load_npy save_npy load_csv save load load_model assert
syn keyword tdlBuiltin len range enumerate zip reversed list tuple sorted int float time args
syn keyword tdlBuiltin exit progress plot help

" --- calls, fields -------------------------------------------------------
syn match   tdlFunctionCall "\<\h\w*\ze\s*("
syn match   tdlDot          "\." contained
syn match   tdlField        "\.\s*\h\w*" contains=tdlDot
syn match   tdlProperty     "\.\s*\%(shape\|rank\|ndim\|size\|dtype\|T\)\>" contains=tdlDot
syn match   tdlMethodCall   "\.\s*\h\w*\ze\s*(" contains=tdlDot

" --- numbers ------------------------------------------------------------
syn match   tdlNumber "\<\d\%(_\=\d\)*\>"
syn match   tdlFloat  "\<\d\%(_\=\d\)*\.\%(\d\%(_\=\d\)*\)\=\%([eE][+-]\=\d\%(_\=\d\)*\)\="
syn match   tdlFloat  "\%([[:alnum:]_.)\]]\)\@1<!\.\d\%(_\=\d\)*\%([eE][+-]\=\d\%(_\=\d\)*\)\="
syn match   tdlFloat  "\<\d\%(_\=\d\)*[eE][+-]\=\d\%(_\=\d\)*\>"

" --- operators ---------------------------------------------------------
syn match   tdlOperator "[-+*/%@&|~<>=!]"
syn match   tdlOperator "\*\*\|//\|==\|!=\|<=\|>=\|[-+*/]="
syn match   tdlArrow    "->\|=>"
" x[..., 0]: the ellipsis subscript
syn match   tdlEllipsis "\.\.\."

" --- strings -----------------------------------------------------------
syn match   tdlEscape     +\\[nt"\\]+ contained
syn match   tdlBadEscape  +\\[^nt"\\]+ contained
syn region  tdlString  start=+"+ skip=+\\\\\|\\"+ end=+"+ oneline contains=tdlEscape,tdlBadEscape,@Spell
" No keepend: a field may hold strings and nested f-strings (f"{d["k"]:.3f}", Python 3.12),
" whose quotes must not end the f-string; the field ends at its matching } (inner {...} are
" tdlBraces), the f-string at the first " outside its fields.
syn region  tdlFString matchgroup=tdlFStringDelim start=+\<f"+ skip=+\\\\\|\\"+ end=+"+ oneline
      \ contains=tdlEscape,tdlBadEscape,tdlFReplacement,tdlFBrace
syn region  tdlFReplacement matchgroup=tdlFDelim start=+{+ end=+}+ contained oneline
      \ contains=@tdlExpr,tdlFormatSpec
syn match   tdlFormatSpec ":[^{}\"]*\ze}" contained
syn match   tdlFBrace     "{{\|}}" contained

" --- types: dtypes and tensor annotations f32[N, ?] -------------------
syn match   tdlDtype "\<\%(bool\|i32\|i64\|f32\|f64\)\>"
syn match   tdlDim    "\h\w*" contained
syn match   tdlDimAny "?" contained

" --- bracketed groups (defined after the items they may contain) ------
syn cluster tdlExpr contains=tdlComment,tdlConditional,tdlRepeat,tdlStatement,tdlOperatorWord,
      \tdlBoolean,tdlNone,tdlFn,tdlGraph,tdlBuiltin,tdlFunctionCall,tdlField,tdlProperty,
      \tdlMethodCall,tdlNumber,tdlFloat,tdlOperator,tdlArrow,tdlEllipsis,tdlString,tdlFString,tdlDtype,
      \tdlParens,tdlBrackets,tdlBraces,tdlTensorType
syn region  tdlParens   matchgroup=tdlDelimiter start="(" end=")" contains=@tdlExpr,tdlKwarg
syn region  tdlBrackets matchgroup=tdlDelimiter start="\[" end="\]" contains=@tdlExpr,tdlSliceColon
syn region  tdlBraces   matchgroup=tdlDelimiter start="{" end="}"
      \ contains=@tdlExpr,tdlRecordKey,tdlInclude,tdlWith,tdlAs,tdlDeclare
syn region  tdlTensorType matchgroup=tdlDelimiter
      \ start="\%(\<\%(bool\|i32\|i64\|f32\|f64\)\s*\)\@<=\[" end="\]"
      \ contains=tdlNumber,tdlDim,tdlDimAny,tdlOperator
syn region  tdlParams   matchgroup=tdlDelimiter start="(" end=")" contained
      \ contains=@tdlExpr,tdlParam
syn match   tdlSliceColon ":" contained
" keyword argument: sum(x, axis=0)
syn match   tdlKwarg     "\%([(,]\s*\)\@<=\h\w*\ze\s*=[^=]" contained
syn match   tdlKwarg     "^\s*\zs\h\w*\ze\s*=[^=]" contained
" parameter name: first in the list or after a comma
syn match   tdlParam     "\%([(,]\s*\)\@<=\h\w*" contained
syn match   tdlParam     "^\s*\zs\h\w*" contained
" record field: {w: ..., b: ...} (also record types)
syn match   tdlRecordKey "\%([{,]\s*\)\@<=\h\w*\ze\s*:" contained
syn match   tdlRecordKey "^\s*\zs\h\w*\ze\s*:" contained

" --- highlight links -----------------------------------------------------
hi def link tdlComment      Comment
hi def link tdlShebang      PreProc
hi def link tdlTodo         Todo
hi def link tdlConditional  Conditional
hi def link tdlRepeat       Repeat
hi def link tdlStatement    Statement
hi def link tdlOperatorWord Operator
hi def link tdlBoolean      Boolean
hi def link tdlNone         Constant
hi def link tdlInclude      Include
hi def link tdlWith         Statement
hi def link tdlAs           Include
hi def link tdlDeclare      Keyword
hi def link tdlGraph        StorageClass
hi def link tdlFn           Keyword
hi def link tdlModule       Identifier
hi def link tdlAlias        Identifier
hi def link tdlVarName      Identifier
hi def link tdlFuncName     Function
hi def link tdlFunctionCall Function
hi def link tdlMethodCall   Function
hi def link tdlBuiltin      Function
hi def link tdlField        Identifier
hi def link tdlProperty     Special
hi def link tdlNumber       Number
hi def link tdlFloat        Float
hi def link tdlOperator     Operator
hi def link tdlArrow        Operator
hi def link tdlEllipsis     Operator
hi def link tdlString       String
hi def link tdlFString      String
hi def link tdlFStringDelim String
hi def link tdlEscape       SpecialChar
hi def link tdlBadEscape    Error
hi def link tdlFBrace       SpecialChar
hi def link tdlFDelim       Special
hi def link tdlFormatSpec   Special
hi def link tdlDtype        Type
hi def link tdlDim          Type
hi def link tdlDimAny       Special
hi def link tdlKwarg        Identifier
hi def link tdlParam        Identifier
hi def link tdlRecordKey    Identifier

let b:current_syntax = 'tdl'
let &cpoptions = s:cpo_save
unlet s:cpo_save
