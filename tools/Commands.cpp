// Commands whose engines have not landed yet say so plainly (exit status 2),
// after checking the script, so static errors are still reported.
#include "tools/Commands.h"

#include <fmt/format.h>
#include <unistd.h>

namespace tdl {

namespace {
int notYet(const std::string& what, const std::string& issue) {
  fmt::print(stderr, "tdl: error: {} is not available yet ({})\n", what, issue);
  return 2;
}
}  // namespace

int runScript(const RunOptions& opts) {
  Compilation c;
  c.diags.setJson(opts.jsonDiagnostics);
  c.diags.setColor(!opts.jsonDiagnostics && isatty(2) && std::getenv("NO_COLOR") == nullptr);
  if (!c.load(opts.file, SemaOptions{opts.eager})) return 1;
  return notYet("running scripts", "the eager VM lands with issue 3; 'tdl check FILE' checks a script");
}

int emitStage(Compilation&, const std::string& stage, const EmitOptions&) {
  return notYet(fmt::format("--stage {}", stage), "only --stage ast exists so far");
}

int buildExecutable(const std::string&, const std::string&, bool) {
  return notYet("'tdl build'", "native executables land with issue 7");
}

int runRepl() { return notYet("'tdl repl'", "it lands with the eager VM, issue 3"); }

int runLanguageServer() { return notYet("'tdl lsp'", "it lands with issue 10"); }

}  // namespace tdl
