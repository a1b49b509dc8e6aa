" Headless test of the TDL Vim support: syntax groups at chosen positions and
" indentation of a messed-up sample. Run:  vim -Nu NONE -i NONE -es -S check.vim
" Writes a report to test/results.txt; exits 1 (cquit) when anything differs.
set nocompatible
let s:dir = expand('<sfile>:p:h')
let &runtimepath = fnamemodify(s:dir, ':h') . ',' . &runtimepath
filetype plugin indent on
syntax on

let s:out = []
let s:failures = 0

function! s:Report(ok, msg) abort
  call add(s:out, (a:ok ? 'ok   ' : 'FAIL ') . a:msg)
  if !a:ok
    let s:failures += 1
  endif
endfunction

" Syntax group at the start of the N-th occurrence of TEXT on line LNUM.
function! s:Check(lnum, text, nth, group) abort
  let line = getline(a:lnum)
  let col = -1
  for _ in range(a:nth)
    let col = stridx(line, a:text, col + 1)
    if col < 0
      call s:Report(0, printf('line %d: %s not found in %s', a:lnum, string(a:text), string(line)))
      return
    endif
  endfor
  let name = synIDattr(synID(a:lnum, col + 1, 1), 'name')
  call s:Report(name ==# a:group, printf('%d:%d %-16s expected %-16s got %s',
        \ a:lnum, col + 1, a:text, a:group, name ==# '' ? '(none)' : name))
endfunction

" ---------------------------------------------------------------- syntax
execute 'edit ' . fnameescape(s:dir . '/sample.tdl')
call s:Report(&filetype ==# 'tdl', 'filetype of sample.tdl is ' . &filetype)
call s:Report(&commentstring ==# '# %s', 'commentstring is ' . &commentstring)

let s:checks = [
      \ [1, '#!', 1, 'tdlShebang'],
      \ [2, '# Sample', 1, 'tdlComment'],
      \ [2, 'TODO', 1, 'tdlTodo'],
      \ [3, 'import', 1, 'tdlInclude'],
      \ [3, 'nn', 1, 'tdlModule'],
      \ [4, '"lib', 1, 'tdlString'],
      \ [4, 'as', 1, 'tdlAs'],
      \ [4, 'util', 2, 'tdlAlias'],
      \ [5, 'let', 1, 'tdlDeclare'],
      \ [5, 'big', 1, 'tdlVarName'],
      \ [5, '1_000_000', 1, 'tdlNumber'],
      \ [5, '1.5', 1, 'tdlFloat'],
      \ [5, '1. ', 1, 'tdlFloat'],
      \ [5, '.5', 1, 'tdlFloat'],
      \ [5, '1e-3', 1, 'tdlFloat'],
      \ [5, '2.5E+4', 1, 'tdlFloat'],
      \ [5, '+', 1, 'tdlOperator'],
      \ [6, 'var', 1, 'tdlDeclare'],
      \ [6, 'true', 1, 'tdlBoolean'],
      \ [6, 'false', 1, 'tdlBoolean'],
      \ [6, 'none', 1, 'tdlNone'],
      \ [7, '"tab', 1, 'tdlString'],
      \ [7, '\t', 1, 'tdlEscape'],
      \ [7, '\"', 1, 'tdlEscape'],
      \ [7, '\q', 1, 'tdlBadEscape'],
      \ [8, 'f32', 1, 'tdlDtype'],
      \ [8, '784', 1, 'tdlNumber'],
      \ [8, 'zeros', 1, 'tdlBuiltin'],
      \ [8, 'dtype', 1, 'tdlKwarg'],
      \ [8, 'f32', 2, 'tdlDtype'],
      \ [10, 'graph', 1, 'tdlGraph'],
      \ [10, 'fn', 1, 'tdlFn'],
      \ [10, 'train_step', 1, 'tdlFuncName'],
      \ [10, 'p,', 1, 'tdlParam'],
      \ [10, 'x:', 1, 'tdlParam'],
      \ [10, 'lr', 1, 'tdlParam'],
      \ [10, 'N', 1, 'tdlDim'],
      \ [10, '3]', 1, 'tdlNumber'],
      \ [10, '?', 1, 'tdlDimAny'],
      \ [10, 'i64', 1, 'tdlDtype'],
      \ [10, '->', 1, 'tdlArrow'],
      \ [11, 'with', 1, 'tdlWith'],
      \ [11, 'tape', 1, 'tdlBuiltin'],
      \ [11, 'as', 1, 'tdlAs'],
      \ [12, 'mean', 1, 'tdlBuiltin'],
      \ [12, 'cross_entropy', 1, 'tdlMethodCall'],
      \ [12, '@', 1, 'tdlOperator'],
      \ [12, 'w', 1, 'tdlField'],
      \ [14, 'gradient', 1, 'tdlMethodCall'],
      \ [15, 'return', 1, 'tdlStatement'],
      \ [15, 'tree_map', 1, 'tdlBuiltin'],
      \ [15, 'fn', 1, 'tdlFn'],
      \ [15, 'a,', 1, 'tdlParam'],
      \ [15, 'b)', 1, 'tdlParam'],
      \ [15, '=>', 1, 'tdlArrow'],
      \ [18, 'fact', 1, 'tdlFuncName'],
      \ [18, 'n)', 1, 'tdlParam'],
      \ [19, 'if', 1, 'tdlConditional'],
      \ [19, '<=', 1, 'tdlOperator'],
      \ [19, 'and', 1, 'tdlOperatorWord'],
      \ [19, 'not', 1, 'tdlOperatorWord'],
      \ [19, 'else', 1, 'tdlConditional'],
      \ [19, 'fact', 1, 'tdlFunctionCall'],
      \ [22, 'w:', 1, 'tdlRecordKey'],
      \ [22, 'b:', 1, 'tdlRecordKey'],
      \ [22, '0.5', 1, 'tdlFloat'],
      \ [23, 'for', 1, 'tdlRepeat'],
      \ [23, 'in', 1, 'tdlRepeat'],
      \ [23, 'range', 1, 'tdlBuiltin'],
      \ [24, '%', 1, 'tdlOperator'],
      \ [24, '==', 1, 'tdlOperator'],
      \ [24, 'continue', 1, 'tdlStatement'],
      \ [25, 'while', 1, 'tdlRepeat'],
      \ [25, 'shape', 1, 'tdlProperty'],
      \ [25, 'break', 1, 'tdlStatement'],
      \ [26, 'f"', 1, 'tdlFStringDelim'],
      \ [26, 'step', 1, 'tdlFString'],
      \ [26, '{i', 1, 'tdlFDelim'],
      \ [26, 'i:', 1, 'tdlFReplacement'],
      \ [26, ':>3', 1, 'tdlFormatSpec'],
      \ [26, '|', 1, 'tdlFString'],
      \ [26, 'loss', 1, 'tdlFReplacement'],
      \ [26, ':.4f', 1, 'tdlFormatSpec'],
      \ [26, '{{', 1, 'tdlFBrace'],
      \ [26, 'sum', 1, 'tdlMethodCall'],
      \ [26, 'my_fn', 1, 'tdlFunctionCall'],
      \ [28, '"loss"', 1, 'tdlString'],
      \ [28, ']:', 1, 'tdlDelimiter'],
      \ [28, ':.3f', 1, 'tdlFormatSpec'],
      \ [28, '} acc', 1, 'tdlFDelim'],
      \ [28, ' acc ', 1, 'tdlFString'],
      \ [28, '"acc"', 1, 'tdlString'],
      \ [28, '}"', 1, 'tdlFDelim'],
      \ [28, '", "', 1, 'tdlFStringDelim'],
      \ [28, '"after', 1, 'tdlString'],
      \ [29, '"a"', 1, 'tdlString'],
      \ [29, '+', 1, 'tdlOperator'],
      \ [29, 'b:', 1, 'tdlFReplacement'],
      \ [29, ':>8', 1, 'tdlFormatSpec'],
      \ [29, '|', 1, 'tdlFString'],
      \ [29, 'f"{x', 1, 'tdlFStringDelim'],
      \ [29, 'x}', 1, 'tdlFReplacement'],
      \ [29, '"}"', 1, 'tdlString'],
      \ [29, '}" +', 1, 'tdlFDelim'],
      \ [29, '" + "after', 1, 'tdlFStringDelim'],
      \ [29, '"after', 1, 'tdlString'],
      \ [30, '{"k"', 1, 'tdlDelimiter'],
      \ [30, '"k"', 1, 'tdlString'],
      \ [30, '2}', 1, 'tdlNumber'],
      \ [30, '"k"', 2, 'tdlString'],
      \ [30, '} {{', 1, 'tdlFDelim'],
      \ [30, '{{', 1, 'tdlFBrace'],
      \ [30, 'lit', 1, 'tdlFString'],
      \ [30, '\"', 1, 'tdlEscape'],
      \ [30, '" + "after', 1, 'tdlFStringDelim'],
      \ [30, '"after', 1, 'tdlString'],
      \ [31, '...', 1, 'tdlEllipsis'],
      \ [31, '1:3', 1, 'tdlNumber'],
      \ [31, ':3', 1, 'tdlSliceColon'],
      \ [31, '*=', 1, 'tdlOperator'],
      \ [32, '...]', 1, 'tdlEllipsis'],
      \ [32, '...ij', 1, 'tdlString'],
      \ ]
for s:c in s:checks
  call call('s:Check', s:c)
endfor

" Whether GROUP is (IN=1) or is not (IN=0) among the syntax items around the
" start of the N-th occurrence of TEXT on line LNUM (synstack, outermost first).
function! s:CheckStack(lnum, text, nth, group, in) abort
  let line = getline(a:lnum)
  let col = -1
  for _ in range(a:nth)
    let col = stridx(line, a:text, col + 1)
    if col < 0
      call s:Report(0, printf('line %d: %s not found in %s', a:lnum, string(a:text), string(line)))
      return
    endif
  endfor
  let names = map(synstack(a:lnum, col + 1), 'synIDattr(v:val, "name")')
  call s:Report((index(names, a:group) >= 0) == a:in, printf('%d:%d %-16s %s %-16s stack %s',
        \ a:lnum, col + 1, a:text, a:in ? 'inside ' : 'outside', a:group, join(names, '>')))
endfunction

" f-string fields holding strings and nested f-strings (Python 3.12)
let s:stack_checks = [
      \ [28, '"loss"', 1, 'tdlFReplacement', 1],
      \ [28, ']:', 1, 'tdlFReplacement', 1],
      \ [28, ':.3f', 1, 'tdlFReplacement', 1],
      \ [28, ' acc ', 1, 'tdlFReplacement', 0],
      \ [28, '"acc"', 1, 'tdlFReplacement', 1],
      \ [28, ', "after', 1, 'tdlFString', 0],
      \ [28, '"after', 1, 'tdlFString', 0],
      \ [29, '"a"', 1, 'tdlFReplacement', 1],
      \ [29, '+', 1, 'tdlFReplacement', 1],
      \ [29, 'b:', 1, 'tdlString', 0],
      \ [29, 'f"{x', 1, 'tdlFReplacement', 1],
      \ [29, '"}"', 1, 'tdlFReplacement', 1],
      \ [29, '" + "after', 1, 'tdlFReplacement', 0],
      \ [29, '+ "after', 1, 'tdlFString', 0],
      \ [29, '"after', 1, 'tdlFString', 0],
      \ [30, '{"k"', 1, 'tdlBraces', 1],
      \ [30, '"k"', 2, 'tdlFReplacement', 1],
      \ [30, '] }', 1, 'tdlFReplacement', 1],
      \ [30, '{{', 1, 'tdlFReplacement', 0],
      \ [30, '"after', 1, 'tdlFString', 0],
      \ [31, '...', 1, 'tdlBrackets', 1],
      \ ]
for s:c in s:stack_checks
  call call('s:CheckStack', s:c)
endfor

" ----------------------------------------------------------- indentation
execute 'edit ' . fnameescape(s:dir . '/indent-input.tdl')
call s:Report(&filetype ==# 'tdl', 'filetype of indent-input.tdl is ' . &filetype)
normal! gg=G
let s:got = getline(1, '$')
let s:want = readfile(s:dir . '/indent-expected.tdl')
if s:got ==# s:want
  call s:Report(1, 'indentation of indent-input.tdl matches indent-expected.tdl')
else
  for s:i in range(max([len(s:got), len(s:want)]))
    let s:g = get(s:got, s:i, '<missing>')
    let s:w = get(s:want, s:i, '<missing>')
    if s:g !=# s:w
      call s:Report(0, printf('indent line %d: expected %s got %s', s:i + 1, string(s:w), string(s:g)))
    endif
  endfor
endif

call add(s:out, printf('vim: %d failure(s)', s:failures))
call writefile(s:out, s:dir . '/results.txt')
if s:failures > 0
  cquit!
endif
qall!
