#include "frontend/Doc.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "frontend/Diagnostics.h"
#include "frontend/Frontend.h"
#include "frontend/ModuleLoader.h"

namespace tdl {

namespace fs = std::filesystem;

namespace {

std::string firstSentence(const std::string& text) {
  std::string joined;
  for (char c : text) joined += c == '\n' ? ' ' : c;
  for (size_t i = 0; i + 1 < joined.size(); ++i)
    if (joined[i] == '.' && joined[i + 1] == ' ') return joined.substr(0, i + 1);
  return joined;
}

// The source text of a span (a default's expression as written).
std::string spanText(const SourceManager& sm, const Loc& l) {
  if (!l.valid() || l.file >= sm.size()) return "?";
  const SourceFile& f = sm.file(l.file);
  if (l.bline == 0 || l.bline > f.lineCount() || l.eline > f.lineCount()) return "?";
  size_t b = f.lineStarts[l.bline - 1] + (l.bcol ? l.bcol - 1 : 0);
  size_t e = f.lineStarts[l.eline - 1] + (l.ecol ? l.ecol - 1 : 0);
  if (e <= b || e > f.text.size()) return "?";
  return f.text.substr(b, e - b);
}

}  // namespace

const std::vector<DocEntry>& builtinDocs() {
  static const std::vector<DocEntry> docs = [] {
    std::vector<DocEntry> d;
#define TDL_DOC(name, sig, doc, example) d.push_back(DocEntry{#name, sig, firstSentence(doc), doc, example});
#include "frontend/builtin_docs.def"
    return d;
  }();
  return docs;
}

const DocEntry* builtinDoc(const std::string& name) {
  for (const DocEntry& e : builtinDocs())
    if (e.name == name) return &e;
  return nullptr;
}

std::string docComment(const SourceManager& sm, const FnDecl& fn) {
  if (!fn.loc.valid() || fn.loc.file >= sm.size()) return "";
  const SourceFile& f = sm.file(fn.loc.file);
  std::vector<std::string> lines;
  for (uint32_t line = fn.loc.bline ? fn.loc.bline : fn.loc.line; line-- > 1;) {
    std::string_view t = f.lineText(line);
    size_t i = t.find_first_not_of(" \t");
    if (i == std::string_view::npos || t[i] != '#') break;
    std::string_view c = t.substr(i + 1);
    if (!c.empty() && c[0] == ' ') c.remove_prefix(1);
    lines.emplace_back(c);
  }
  std::reverse(lines.begin(), lines.end());
  std::string out;
  for (const std::string& l : lines) out += (out.empty() ? "" : "\n") + l;
  return out;
}

DocEntry fnDoc(const SourceManager& sm, const FnDecl& fn, const std::string& qualifier) {
  DocEntry e;
  e.name = qualifier.empty() ? fn.name : qualifier + "." + fn.name;
  e.signature = e.name + "(";
  for (size_t i = 0; i < fn.params.size(); ++i) {
    const Param& p = fn.params[i];
    e.signature += (i ? ", " : "") + p.name;
    if (p.type) e.signature += ": " + typeToString(*p.type);
    if (p.deflt) e.signature += (p.type ? " = " : "=") + spanText(sm, p.deflt->loc);
  }
  e.signature += ")";
  if (fn.ret) e.signature += " -> " + typeToString(*fn.ret);
  if (fn.isGraph) e.signature = "graph fn " + e.signature;
  e.text = docComment(sm, fn);
  e.summary = firstSentence(e.text);
  return e;
}

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
  }
  return out;
}

std::string docText(const DocEntry& e) {
  std::string out = e.signature + "\n";
  std::string text = e.text.empty() ? "(no description)" : e.text;
  size_t at = 0;
  while (at <= text.size()) {
    size_t nl = text.find('\n', at);
    out += "    " + text.substr(at, nl == std::string::npos ? std::string::npos : nl - at) + "\n";
    if (nl == std::string::npos) break;
    at = nl + 1;
  }
  if (!e.example.empty()) out += "    example: " + e.example + "\n";
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
