// The reference (issue 19): one entry per builtin (frontend/builtin_docs.def) and per
// top-level fn of the standard modules (its doc comment: the `#` lines right above it).
// `tdl doc NAME`, help(f), the REPL's :help, the language server's hover and
// docs/reference.md (scripts/gen-reference.py) all read these.
#pragma once
#include <string>
#include <vector>

#include "frontend/Ast.h"
#include "frontend/Source.h"

namespace tdl {

struct DocEntry {
  std::string name;       // "sum", "nn.softmax"
  std::string signature;  // "sum(x, axis=none, keepdims=false)", with defaults as written
  std::string summary;    // the first sentence
  std::string text;       // the whole description
  std::string example;    // builtins: an expression (its result is shown by the reference), or ""
};

const std::vector<DocEntry>& builtinDocs();
const DocEntry* builtinDoc(const std::string& name);
// The doc comment right above fn (its `#` lines, without the `# `), "" if none.
std::string docComment(const SourceManager& sm, const FnDecl& fn);
// The same above a statement at `loc`.
std::string docCommentAbove(const SourceManager& sm, const Loc& loc);
// The entry of a module's constant (a top-level `let name = value`): `qualifier.name = value`.
DocEntry constDoc(const SourceManager& sm, const Stmt& let, const std::string& qualifier);
// The entry of a top-level fn: `qualifier.name(params with defaults as written)`.
DocEntry fnDoc(const SourceManager& sm, const FnDecl& fn, const std::string& qualifier);
// The parts below load modules (tdl_frontend, with the parser); the ones above do not
// (tdl_frontend_core, which native executables link).
// The standard modules' names (the .tdl files of the stdlib folders), sorted.
std::vector<std::string> standardModules();
// The entries of a standard module's top-level fns, in order (empty, and `err` set, when it
// does not load).
std::vector<DocEntry> moduleDocs(const std::string& module, std::string& err);
// The text `tdl doc NAME` prints: a builtin, a standard module (its fns, one line each) or
// `module.fn`; false (and `err`, with the closest name) when NAME is none of these.
bool docFor(const std::string& name, std::string& out, std::string& err);
// An entry as text: the signature, then the description (and example) indented.
std::string docText(const DocEntry& e);
// help("name"): a builtin's entry, else the installed lookup's (the tdl tool installs
// docFor); false with `err` otherwise.
using DocLookupFn = bool (*)(const std::string& name, std::string& out, std::string& err);
void setDocLookup(DocLookupFn fn);
bool lookupDoc(const std::string& name, std::string& out, std::string& err);

}  // namespace tdl
