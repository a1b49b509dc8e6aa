" TDL files: *.tdl, or a first line such as `#!/usr/bin/env tdl`.
autocmd BufNewFile,BufRead *.tdl setfiletype tdl
autocmd BufNewFile,BufRead * if getline(1) =~# '^#!.*\<tdl\>' | setfiletype tdl | endif
