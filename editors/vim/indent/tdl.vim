" Vim indent file
" Language: TDL
" Brace-based: one shiftwidth deeper after a line that leaves `{`, `(` or `[`
" open, one less on a line that starts with `}`, `)` or `]`. Strings and
" comments are ignored when counting brackets.

if exists('b:did_indent')
  finish
endif
let b:did_indent = 1

setlocal autoindent nolisp nosmartindent nocindent
setlocal indentexpr=GetTdlIndent(v:lnum)
setlocal indentkeys=0{,0},0),0],!^F,o,O,e

let b:undo_indent = 'setlocal autoindent< lisp< smartindent< cindent< indentexpr< indentkeys<'

if exists('*GetTdlIndent')
  finish
endif

let s:cpo_save = &cpoptions
set cpoptions&vim

" The line without string literals and without its comment.
function! s:Code(line) abort
  let l = substitute(a:line, '\vf?"(\\.|[^"\\])*("|$)', '""', 'g')
  return substitute(l, '#.*$', '', '')
endfunction

" Net number of brackets a line opens, not counting the closers it starts
" with (those already moved the line itself to the left).
function! s:Opens(line) abort
  let code = substitute(s:Code(a:line), '^\s*[})\]]*', '', '')
  let n = 0
  for ch in split(code, '\zs')
    if ch =~# '[{(\[]'
      let n += 1
    elseif ch =~# '[})\]]'
      let n -= 1
    endif
  endfor
  return n
endfunction

function! GetTdlIndent(lnum) abort
  let prev = prevnonblank(a:lnum - 1)
  if prev == 0
    return 0
  endif
  let sw = shiftwidth()
  let ind = indent(prev)
  let opens = s:Opens(getline(prev))
  if opens > 0
    let ind += sw
  elseif opens < 0
    let ind += opens * sw
  endif
  if getline(a:lnum) =~# '^\s*[})\]]'
    let ind -= sw
  endif
  return ind < 0 ? 0 : ind
endfunction

let &cpoptions = s:cpo_save
unlet s:cpo_save
