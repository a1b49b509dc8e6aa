// The frontend as one call: load (parse + imports) and check a program.
// Used by `tdl check/run/emit`, the REPL and the language server.
#pragma once
#include <memory>
#include <string>

#include "frontend/Diagnostics.h"
#include "frontend/ModuleLoader.h"
#include "frontend/Sema.h"

namespace tdl {

struct Compilation {
  SourceManager sources;
  DiagEngine diags{sources};
  std::unique_ptr<ModuleLoader> loader;
  bool ok = false;

  // Parses `path` (or `text` for it) and its imports, then runs Sema.
  bool load(const std::string& path, const SemaOptions& opts, const std::string* text = nullptr);
  std::vector<std::unique_ptr<Module>>& modules() { return loader->modules(); }
};

}  // namespace tdl
