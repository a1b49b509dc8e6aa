#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "frontend/Diagnostics.h"
#include "frontend/Doc.h"
#include "frontend/Frontend.h"
#include "frontend/ModuleLoader.h"

namespace tdl {

namespace fs = std::filesystem;

std::vector<std::string> standardModules() {
  std::vector<std::string> names;
  for (const std::string& d : ModuleLoader::defaultStdlibDirs()) {
    std::error_code ec;
    for (auto& f : fs::directory_iterator(d, ec))
      if (f.path().extension() == ".tdl") {
        std::string n = f.path().stem().string();
        if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
      }
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<DocEntry> moduleDocs(const std::string& module, std::string& err) {
  std::vector<DocEntry> out;
  auto names = standardModules();
  if (std::find(names.begin(), names.end(), module) == names.end()) {
    err = fmt::format("no standard module named '{}'{}", module, didYouMean(module, names));
    return out;
  }
  Compilation c;
  c.diags.setPrint(false);
  std::string text = "import " + module + "\n";
  if (!c.load("<doc>", SemaOptions{}, &text)) {
    err = fmt::format("the standard module '{}' does not load", module);
    return out;
  }
  for (auto& m : c.modules()) {
    if (m->name != module) continue;
    for (auto& s : m->stmts)
      if (s->kind == StmtKind::Fn && s->fn && !s->fn->name.empty() && s->fn->name[0] != '_')
        out.push_back(fnDoc(c.sources, *s->fn, module));
      else if (s->kind == StmtKind::Let && s->pattern.kind == Pattern::Name && !s->pattern.name.empty() &&
               s->pattern.name[0] != '_' && !s->exprs.empty())
        out.push_back(constDoc(c.sources, *s, module));
  }
  return out;
}

bool docFor(const std::string& name, std::string& out, std::string& err) {
  if (const DocEntry* b = builtinDoc(name)) {
    out = docText(*b);
    return true;
  }
  size_t dot = name.find('.');
  std::string module = dot == std::string::npos ? name : name.substr(0, dot);
  auto mods = standardModules();
  if (std::find(mods.begin(), mods.end(), module) != mods.end()) {
    std::vector<DocEntry> fns = moduleDocs(module, err);
    if (!err.empty()) return false;
    if (dot == std::string::npos) {
      out = fmt::format("module {} (import {}):\n", module, module);
      for (const DocEntry& e : fns) out += fmt::format("  {}\n      {}\n", e.signature, e.summary);
      return true;
    }
    std::vector<std::string> known;
    for (const DocEntry& e : fns) {
      if (e.name == name) {
        out = docText(e);
        return true;
      }
      known.push_back(e.name);
    }
    err = fmt::format("module '{}' has no fn '{}'{}", module, name.substr(dot + 1), didYouMean(name, known));
    return false;
  }
  std::vector<std::string> known = mods;
  for (const DocEntry& e : builtinDocs()) known.push_back(e.name);
  std::string hint = didYouMean(name, known);
  if (hint.empty()) {  // a standard fn without its module: suggest it qualified
    std::vector<std::string> bare, full;
    for (const std::string& m : mods) {
      std::string e2;
      for (const DocEntry& e : moduleDocs(m, e2)) {
        bare.push_back(e.name.substr(m.size() + 1));
        full.push_back(e.name);
      }
    }
    std::string h = didYouMean(dot == std::string::npos ? name : name.substr(dot + 1), bare);
    for (size_t i = 0; i < bare.size() && !h.empty(); ++i)
      if (h == fmt::format(" (did you mean '{}'?)", bare[i])) hint = fmt::format(" (did you mean '{}'?)", full[i]);
  }
  err = fmt::format("no builtin or standard module named '{}'{}", name, hint);
  return false;
}

}  // namespace tdl
