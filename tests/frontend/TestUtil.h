// Helpers for frontend unit tests: check a program given as text.
#pragma once
#include <string>

#include "frontend/AstPrinter.h"
#include "frontend/Frontend.h"
#include "frontend/Parser.h"

namespace tdl::test {

struct Checked {
  bool ok;
  std::string ast;                 // AST dump of the main module (when it parsed)
  std::vector<Diagnostic> diags;
  std::string messages;            // "L:C message\n" per diagnostic
};

inline bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

// Runs on a large stack, as the tool does (deep but legal input recurses).
inline Checked check(const std::string& src, bool eager = false) {
  Checked r{false, "", {}, ""};
  runWithLargeStack([&] {
    Compilation c;
    c.diags.setPrint(false);
    c.load("test.tdl", SemaOptions{eager}, &src);
    r.ok = c.ok;
    r.diags = c.diags.all();
    if (!c.loader->modules().empty()) r.ast = printAst(c.loader->main());
  });
  for (auto& d : r.diags) r.messages += std::to_string(d.loc.line) + ":" + std::to_string(d.loc.col) + " " + d.message + "\n";
  return r;
}

}  // namespace tdl::test
