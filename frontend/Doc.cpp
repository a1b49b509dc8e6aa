#include "frontend/Doc.h"

#include <fmt/format.h>

#include <algorithm>

#include "frontend/Diagnostics.h"

namespace tdl {

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

std::string docComment(const SourceManager& sm, const FnDecl& fn) { return docCommentAbove(sm, fn.loc); }

std::string docCommentAbove(const SourceManager& sm, const Loc& loc) {
  if (!loc.valid() || loc.file >= sm.size()) return "";
  const SourceFile& f = sm.file(loc.file);
  std::vector<std::string> lines;
  for (uint32_t line = loc.bline ? loc.bline : loc.line; line-- > 1;) {
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

DocEntry constDoc(const SourceManager& sm, const Stmt& let, const std::string& qualifier) {
  DocEntry e;
  e.name = qualifier.empty() ? let.pattern.name : qualifier + "." + let.pattern.name;
  e.signature = e.name + " = " + spanText(sm, let.exprs[0]->loc);
  e.text = docCommentAbove(sm, let.loc);
  e.summary = firstSentence(e.text);
  return e;
}

// The lookup help() uses for names given as strings (a module, `module.fn`): installed by
// the tdl tool (it can load modules); a native executable has builtins only.
namespace {
DocLookupFn gDocLookup = nullptr;
}
void setDocLookup(DocLookupFn fn) { gDocLookup = fn; }
bool lookupDoc(const std::string& name, std::string& out, std::string& err) {
  if (const DocEntry* b = builtinDoc(name)) {
    out = docText(*b);
    return true;
  }
  if (gDocLookup) return gDocLookup(name, out, err);
  err = fmt::format("no builtin named '{}' (the reference of modules and their fns: tdl doc {})", name, name);
  return false;
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

}  // namespace tdl
