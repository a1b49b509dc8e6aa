#include "frontend/ModuleLoader.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "frontend/Parser.h"

#ifndef TDL_SOURCE_STDLIB
#define TDL_SOURCE_STDLIB ""
#endif

namespace tdl {

namespace fs = std::filesystem;

// Files larger than this are refused rather than read (a script, not data).
constexpr std::uintmax_t kMaxSourceBytes = 64u << 20;

bool readFile(const std::string& path, std::string& out, std::string& why) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    why = "is a directory";
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    why = std::strerror(errno);
    return false;
  }
  auto size = fs::file_size(path, ec);
  if (!ec && size > kMaxSourceBytes) {
    why = fmt::format("file is too large ({} bytes)", size);
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

ModuleLoader::ModuleLoader(SourceManager& sm, DiagEngine& diags, std::vector<std::string> stdlibDirs)
    : sm_(sm), diags_(diags), stdlibDirs_(std::move(stdlibDirs)) {}

std::vector<std::string> ModuleLoader::defaultStdlibDirs() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("TDL_STDLIB")) dirs.push_back(env);
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path bin = exe.parent_path();
    dirs.push_back((bin / "stdlib").string());
    dirs.push_back((bin / "../share/tdl/stdlib").string());
    dirs.push_back((bin / "../stdlib").string());
  }
  if (std::strlen(TDL_SOURCE_STDLIB) > 0) dirs.push_back(TDL_SOURCE_STDLIB);
  return dirs;
}

int ModuleLoader::load(const std::string& path, const std::string& name, const std::string* text) {
  std::error_code ec;
  std::string key = fs::weakly_canonical(path, ec).string();
  if (ec) key = path;
  auto it = byPath_.find(key);
  if (it != byPath_.end()) return it->second;
  std::string src;
  if (text) {
    src = *text;
  } else {
    std::string why;
    if (!readFile(path, src, why)) return -1;
  }
  uint32_t fileId = sm_.add(path, std::move(src));
  auto m = parseModule(sm_, fileId, diags_);
  if (!m) return -2;
  m->id = static_cast<int>(modules_.size());
  m->name = name;
  m->path = path;
  byPath_[key] = m->id;
  modules_.push_back(std::move(m));
  return modules_.back()->id;
}

bool ModuleLoader::loadMain(const std::string& path, const std::string* text) {
  std::string why;
  if (!text) {
    std::string probe;
    if (!readFile(path, probe, why)) {
      uint32_t f = sm_.add(path, "");
      Diagnostic d{Severity::Error, Loc{f, 0, 0, 0, 0, 0, 0}, fmt::format("cannot read '{}': {}", path, why), {}};
      diags_.report(d);
      return false;
    }
  }
  int id = load(path, "__main__", text);
  if (id < 0) return false;
  return loadImports(id);
}

bool ModuleLoader::loadImports(int moduleId) {
  if (!importsDone_.insert(moduleId).second) return true;
  loading_.push_back(moduleId);
  bool ok = true;
  // Collect imports first: `modules_` may grow (and move) while loading.
  std::vector<Stmt*> imports;
  for (auto& s : modules_[moduleId]->stmts)
    if (s->kind == StmtKind::Import) imports.push_back(s.get());
  fs::path base = fs::path(modules_[moduleId]->path).parent_path();
  for (Stmt* imp : imports) {
    std::vector<std::string> candidates;
    if (imp->isFileImport) {
      fs::path p(imp->str);
      candidates.push_back(p.is_absolute() ? p.string() : (base / p).lexically_normal().string());
    } else {
      for (auto& d : stdlibDirs_) candidates.push_back((fs::path(d) / (imp->str + ".tdl")).string());
    }
    std::string found;
    for (auto& c : candidates) {
      std::error_code ec;
      if (fs::is_regular_file(c, ec)) {
        found = c;
        break;
      }
    }
    if (found.empty()) {
      std::string hint;
      if (!imp->isFileImport) {
        std::vector<std::string> known;
        for (auto& d : stdlibDirs_) {
          std::error_code ec;
          for (auto& f : fs::directory_iterator(d, ec))
            if (f.path().extension() == ".tdl") known.push_back(f.path().stem().string());
        }
        hint = didYouMean(imp->str, known);
      }
      diags_.error(imp->pathLoc, imp->isFileImport
                                     ? fmt::format("cannot find imported file '{}'", imp->str)
                                     : fmt::format("no standard module named '{}'{}", imp->str, hint));
      ok = false;
      continue;
    }
    std::error_code ec;
    std::string key = fs::weakly_canonical(found, ec).string();
    auto it = byPath_.find(key);
    if (it != byPath_.end() && std::find(loading_.begin(), loading_.end(), it->second) != loading_.end()) {
      // The chain from the imported module back to it, by the names they were imported as.
      auto at = std::find(loading_.begin(), loading_.end(), it->second);
      std::string chain;
      for (auto m = at; m != loading_.end(); ++m) {
        const std::string& nm = modules_[static_cast<size_t>(*m)]->name;
        chain += fmt::format("'{}' imports ", nm.empty() || nm == "__main__" ? modules_[static_cast<size_t>(*m)]->path : nm);
      }
      diags_.error(imp->pathLoc, at + 1 == loading_.end() ? fmt::format("import cycle: '{}' imports itself", imp->str)
                                                          : fmt::format("import cycle: {}'{}'", chain, imp->str));
      ok = false;
      continue;
    }
    size_t files = sm_.size();
    int id = load(found, imp->str, nullptr);
    if (sm_.size() > files) sm_.fileMut(static_cast<uint32_t>(files)).importedAt = imp->pathLoc;
    if (id == -1) {
      diags_.error(imp->pathLoc, fmt::format("cannot read imported file '{}'", imp->str));
      ok = false;
      continue;
    }
    if (id < 0) {
      ok = false;
      continue;
    }
    imp->module = id;
    modules_[moduleId]->importedModules.push_back(id);
    if (!loadImports(id)) ok = false;
  }
  loading_.pop_back();
  return ok;
}

}  // namespace tdl
