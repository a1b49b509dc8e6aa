// `tdl lsp`: a language server over stdio reusing the frontend: diagnostics on
// open/change (the messages of `tdl check`), go to definition, hover, document
// symbols, completion (names in scope, builtins, keywords, module members).
#pragma once
#include <cstdio>

namespace tdl::lsp {
int runLanguageServer(FILE* in, FILE* out);
}
