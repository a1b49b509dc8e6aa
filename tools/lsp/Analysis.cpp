#include "tools/lsp/Analysis.h"

#include <regex>
#include <set>

namespace tdl::lsp {

bool contains(const Loc& l, uint32_t line, uint32_t col) {
  if (!l.valid()) return false;
  uint32_t bl = l.bline ? l.bline : l.line, bc = l.bline ? l.bcol : l.col;
  uint32_t el = l.eline ? l.eline : l.line, ec = l.eline ? l.ecol : l.col + 1;
  if (line < bl || line > el) return false;
  if (line == bl && col < bc) return false;
  if (line == el && col >= ec) return false;
  return true;
}

namespace {

const char* const kKeywords[] = {"fn", "graph", "let", "var", "if", "else", "while", "for", "in", "return",
                                 "break", "continue", "import", "as", "with", "and", "or", "not",
                                 "true", "false", "none"};

class Finder {
 public:
  Finder(uint32_t file, uint32_t line, uint32_t col) : file_(file), line_(line), col_(col) {}
  std::optional<Hit> hit;

  void stmts(const std::vector<StmtPtr>& ss) {
    for (auto& s : ss) stmt(*s);
  }

 private:
  bool at(const Loc& l) const { return l.file == file_ && contains(l, line_, col_); }

  void pattern(const Pattern& p, const std::string& what) {
    if (p.kind == Pattern::Name) {
      if (at(p.loc)) hit = Hit{p.loc, p.loc, what.empty() ? p.name : what + " " + p.name};
      return;
    }
    for (auto& e : p.elems) pattern(e, what);
  }

  void fn(const FnDecl& f) {
    if (!f.isLambda && at(f.loc)) hit = Hit{f.loc, f.loc, fnSignature(f)};
    for (auto& p : f.params) {
      if (at(p.loc)) hit = Hit{p.loc, p.loc, "parameter " + p.name + (p.type ? ": " + typeToString(*p.type) : "")};
      if (p.deflt) expr(*p.deflt);
    }
    if (f.body) stmt(*f.body);
  }

  void expr(const Expr& e) {
    if (e.kind == ExprKind::Name && at(e.loc)) {
      hit = Hit{e.loc, e.declLoc, e.declDesc.empty() ? e.str : e.declDesc};
      return;
    }
    if (e.kind == ExprKind::Field && at(e.loc) && !at(e.kids[0]->loc) && !e.declDesc.empty()) {
      Loc r = e.loc;
      r.line = r.eline;
      r.col = r.ecol - static_cast<uint32_t>(e.str.size());
      r.bline = r.eline;
      r.bcol = r.col;
      hit = Hit{r, e.declLoc, e.declDesc};
      return;
    }
    if (e.kind == ExprKind::Lambda) fn(*e.fn);
    for (auto& k : e.kids)
      if (k) expr(*k);
    for (auto& s : e.subs)
      for (auto* p : {&s.index, &s.lo, &s.hi, &s.step})
        if (*p) expr(**p);
    for (auto& p : e.parts)
      if (p.expr) expr(*p.expr);
  }

  void stmt(const Stmt& s) {
    if (s.kind == StmtKind::Let) pattern(s.pattern, s.isVar ? "var" : "let");
    if (s.kind == StmtKind::For) pattern(s.pattern, "loop variable");
    if (s.kind == StmtKind::Fn) fn(*s.fn);
    for (auto& e : s.exprs) expr(*e);
    stmts(s.stmts);
    if (s.body) stmt(*s.body);
    if (s.orelse) stmt(*s.orelse);
  }

  uint32_t file_, line_, col_;
};

// Names declared before (line, col) inside the functions enclosing it.
class ScopeCollector {
 public:
  ScopeCollector(uint32_t line, uint32_t col) : line_(line), col_(col) {}
  std::set<std::string> names;

  void stmts(const std::vector<StmtPtr>& ss) {
    for (auto& s : ss) stmt(*s);
  }

 private:
  bool before(const Loc& l) const { return l.line < line_ || (l.line == line_ && l.col <= col_); }
  void pattern(const Pattern& p) {
    if (p.kind == Pattern::Name) {
      if (before(p.loc)) names.insert(p.name);
    }
    for (auto& e : p.elems) pattern(e);
  }
  void fn(const FnDecl& f) {
    if (!f.body || !contains(f.body->loc, line_, col_)) return;
    for (auto& p : f.params) names.insert(p.name);
    stmt(*f.body);
  }
  void expr(const Expr& e) {
    if (e.kind == ExprKind::Lambda) fn(*e.fn);
    for (auto& k : e.kids)
      if (k) expr(*k);
  }
  void stmt(const Stmt& s) {
    if (s.kind == StmtKind::Let || s.kind == StmtKind::For) pattern(s.pattern);
    if (s.kind == StmtKind::With && before(s.pathLoc)) names.insert(s.str);
    if (s.kind == StmtKind::Fn) {
      if (!s.fn->isLambda) names.insert(s.fn->name);
      fn(*s.fn);
    }
    for (auto& e : s.exprs) expr(*e);
    stmts(s.stmts);
    if (s.body) stmt(*s.body);
    if (s.orelse) stmt(*s.orelse);
  }
  uint32_t line_, col_;
};

}  // namespace

std::optional<Hit> findAt(Compilation& c, uint32_t line, uint32_t col) {
  if (!c.loader || c.loader->modules().empty()) return std::nullopt;
  Finder finder(0, line, col);
  finder.stmts(c.loader->main().stmts);
  return finder.hit;
}

// The reference entry behind a hover (issue 19): a builtin's (frontend/builtin_docs.def),
// or a top-level fn's (its signature with defaults and its doc comment), where one applies.
std::optional<DocEntry> docOf(Compilation& c, const std::string& desc, const Loc& decl) {
  if (desc.rfind("builtin ", 0) == 0) {
    if (const DocEntry* b = builtinDoc(desc.substr(8))) return *b;
    return std::nullopt;
  }
  if (!decl.valid()) return std::nullopt;
  for (auto& m : c.loader->modules())
    for (auto& st : m->stmts) {
      if (st->kind != StmtKind::Fn || !st->fn) continue;
      const Loc& l = st->fn->loc;
      if (l.file != decl.file || l.line != decl.line || l.col != decl.col) continue;
      bool standard = m->id > 0 && m->name.find('/') == std::string::npos && m->name.find('.') == std::string::npos;
      DocEntry e = fnDoc(c.sources, *st->fn, standard ? m->name : "");
      if (!st->fn->isGraph) e.signature = "fn " + e.signature;
      return e;
    }
  return std::nullopt;
}

std::string docMarkdown(const DocEntry& e) {
  std::string md = "```tdl\n" + e.signature + "\n```";
  if (!e.text.empty()) md += "\n\n" + e.text;
  if (!e.example.empty()) md += "\n\nExample: `" + e.example + "`";
  return md;
}

std::vector<Completion> completionsAt(Compilation& c, uint32_t line, uint32_t col, const std::string* given) {
  std::vector<Completion> items;
  std::set<std::string> seen;
  auto add = [&](const std::string& label, int kind, const std::string& detail, const std::string& doc = "") {
    if (!seen.insert(label).second) return;
    items.push_back(Completion{label, kind, detail, doc});
  };
  auto addFn = [&](const FnDecl& f, const std::string& qualifier) {
    DocEntry e = fnDoc(c.sources, f, qualifier);
    add(f.name, kItemFunction, e.signature, e.text);
  };
  // After `m.`: the members of module m.
  std::string before;
  if (given) before = *given;
  else if (c.sources.size() > 0) before = std::string(c.sources.file(0).lineText(line).substr(0, col - 1));
  std::smatch m;
  static const std::regex member(R"(([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z0-9_]*)$)");
  std::vector<std::unique_ptr<Module>> none;
  auto& mods = c.loader ? c.loader->modules() : none;
  if (std::regex_search(before, m, member) && !mods.empty()) {
    for (auto& s : mods[0]->stmts) {
      if (s->kind != StmtKind::Import || s->alias != m[1].str() || s->module < 0) continue;
      Module& mod = *mods[static_cast<size_t>(s->module)];
      for (auto& st : mod.stmts) {
        if (st->kind == StmtKind::Fn) addFn(*st->fn, s->alias);
      }
      for (auto& n : mod.globalNames) add(n, kItemVariable, s->alias + "." + n);
      return items;
    }
  }
  if (!mods.empty()) {
    ScopeCollector sc(line, col);
    sc.stmts(mods[0]->stmts);
    for (auto& n : sc.names) add(n, kItemVariable, "local");
    for (auto& s : mods[0]->stmts) {
      if (s->kind == StmtKind::Fn) addFn(*s->fn, "");
      if (s->kind == StmtKind::Import) add(s->alias, kItemModule, "module");
    }
    for (auto& n : mods[0]->globalNames) add(n, kItemVariable, "top-level");
  }
  static const char* const builtins[] = {
#define BUILTIN(n) #n,
#include "frontend/builtins.def"
#undef BUILTIN
  };
  for (const char* b : builtins) {
    if (b[0] == '_') continue;  // internal (the dist module's)
    if (const DocEntry* e = builtinDoc(b)) add(b, kItemFunction, e->signature, e->text);
    else add(b, kItemFunction, "builtin");
  }
  for (const char* k : kKeywords) add(k, kItemKeyword, "keyword");
  return items;
}

}  // namespace tdl::lsp
