// ModuleLoader: reads and parses the main file and everything it imports
// (`import "rel/path.tdl" as m` relative to the importing file; `import nn`
// from the standard library folders). Each file is loaded once; cycles are
// errors at the import.
#pragma once
#include <map>
#include <set>
#include <memory>
#include <string>
#include <vector>

#include "frontend/Ast.h"
#include "frontend/Diagnostics.h"

namespace tdl {

class ModuleLoader {
 public:
  ModuleLoader(SourceManager& sm, DiagEngine& diags, std::vector<std::string> stdlibDirs);

  // Loads `path` as module 0 and, transitively, its imports. Returns false
  // when anything failed (diagnostics reported). `text` overrides reading the
  // file (the language server and the REPL).
  bool loadMain(const std::string& path, const std::string* text = nullptr);

  std::vector<std::unique_ptr<Module>>& modules() { return modules_; }
  Module& main() { return *modules_.at(0); }

  // The standard library folders searched by default: $TDL_STDLIB, folders
  // next to the running executable, and the source tree's stdlib/.
  static std::vector<std::string> defaultStdlibDirs();

 private:
  int load(const std::string& path, const std::string& name, const std::string* text);
  bool loadImports(int moduleId);

  SourceManager& sm_;
  DiagEngine& diags_;
  std::vector<std::string> stdlibDirs_;
  std::vector<std::unique_ptr<Module>> modules_;
  std::map<std::string, int> byPath_;   // canonical path -> module id
  std::vector<int> loading_;            // import stack, for cycles
  std::set<int> importsDone_;
};

// Reads a whole file; false with a reason on failure.
bool readFile(const std::string& path, std::string& out, std::string& why);

}  // namespace tdl
