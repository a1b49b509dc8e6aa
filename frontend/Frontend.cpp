#include "frontend/Frontend.h"

namespace tdl {

bool Compilation::load(const std::string& path, const SemaOptions& opts, const std::string* text) {
  loader = std::make_unique<ModuleLoader>(sources, diags, ModuleLoader::defaultStdlibDirs());
  bool parsed = loader->loadMain(path, text);
  if (loader->modules().empty()) return ok = false;
  // Sema runs even when an import failed, so that all errors of the main file show.
  bool checked = analyze(loader->modules(), diags, opts);
  return ok = parsed && checked;
}

}  // namespace tdl
