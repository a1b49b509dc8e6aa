// What the editor features know about a program, shared by the language server (tdl lsp)
// and the Jupyter kernel's completion and inspection (issue 23): the name or declaration
// under a position, its reference entry, and the completions at a position.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "frontend/Doc.h"
#include "frontend/Frontend.h"

namespace tdl::lsp {

// LSP CompletionItemKind values used here.
constexpr int kItemFunction = 3, kItemVariable = 6, kItemModule = 9, kItemKeyword = 14;

// What sits under the cursor: a use of a name, or a declaration.
struct Hit {
  Loc range;
  Loc decl;
  std::string desc;  // "let x: f32[3]", "builtin sum", a fn's signature, ...
};
bool contains(const Loc& l, uint32_t line, uint32_t col);
// In the main file (file 0) of c, at a 1-based line and byte column.
std::optional<Hit> findAt(Compilation& c, uint32_t line, uint32_t col);

// The reference entry behind a hit: a builtin's (frontend/builtin_docs.def), or a fn's
// (its signature with defaults and its doc comment), where one applies.
std::optional<DocEntry> docOf(Compilation& c, const std::string& desc, const Loc& decl);
std::string docMarkdown(const DocEntry& e);

struct Completion {
  std::string label;
  int kind;            // kItem*
  std::string detail;  // a signature, "local", "module", ...
  std::string doc;     // markdown, or ""
};
// Names in scope at (line, col) of file 0, top-level fns and imports, builtins with their
// signatures and keywords; after `m.`, the members of module m. `before`: the cursor's line
// up to it, when it is not (yet) in c's source (a notebook cell that does not parse).
std::vector<Completion> completionsAt(Compilation& c, uint32_t line, uint32_t col,
                                      const std::string* before = nullptr);

}  // namespace tdl::lsp
