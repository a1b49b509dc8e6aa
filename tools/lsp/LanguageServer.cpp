#include "tools/lsp/LanguageServer.h"

#include <fmt/format.h>

#include <filesystem>
#include <map>
#include <optional>
#include <memory>
#include <regex>
#include <set>

#include "frontend/Doc.h"
#include "frontend/Frontend.h"
#include "tools/lsp/Transport.h"

namespace tdl::lsp {

namespace {

using json = nlohmann::json;

// JSON-RPC error codes.
constexpr int kParseError = -32700, kInvalidRequest = -32600, kMethodNotFound = -32601;
constexpr int kServerNotInitialized = -32002;

// LSP SymbolKind / CompletionItemKind values used here.
constexpr int kSymModule = 2, kSymFunction = 12, kSymVariable = 13, kSymConstant = 14;
constexpr int kItemFunction = 3, kItemVariable = 6, kItemModule = 9, kItemKeyword = 14;

const char* const kKeywords[] = {"fn", "graph", "let", "var", "if", "else", "while", "for", "in", "return",
                                 "break", "continue", "import", "as", "with", "and", "or", "not",
                                 "true", "false", "none"};

std::string uriToPath(const std::string& uri) {
  std::string s = uri.rfind("file://", 0) == 0 ? uri.substr(7) : uri;
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string pathToUri(const std::string& path) {
  std::error_code ec;
  std::string abs = std::filesystem::absolute(path, ec).lexically_normal().string();
  std::string out = "file://";
  for (char c : abs) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') out += c;
    else out += fmt::format("%{:02X}", u);
  }
  return out;
}

// UTF-16 column (LSP) of a 1-based byte column in `line`, and back.
uint32_t utf16Col(std::string_view line, uint32_t byteCol) {
  uint32_t units = 0;
  for (size_t i = 0; i + 1 < byteCol && i < line.size(); ++i) {
    auto c = static_cast<unsigned char>(line[i]);
    if ((c & 0xC0) == 0x80) continue;
    units += c >= 0xF0 ? 2 : 1;
  }
  return units;
}
uint32_t byteCol(std::string_view line, uint32_t utf16) {
  uint32_t units = 0;
  size_t i = 0;
  for (; i < line.size() && units < utf16; ++i) {
    auto c = static_cast<unsigned char>(line[i]);
    if ((c & 0xC0) == 0x80) continue;
    units += c >= 0xF0 ? 2 : 1;
  }
  while (i < line.size() && (static_cast<unsigned char>(line[i]) & 0xC0) == 0x80) ++i;
  return static_cast<uint32_t>(i) + 1;
}

struct Document {
  std::string path;
  std::string text;
  std::unique_ptr<Compilation> comp;
};

// What sits under the cursor: a use of a name, or a declaration.
struct Hit {
  Loc range;
  Loc decl;
  std::string desc;
};

bool contains(const Loc& l, uint32_t line, uint32_t col) {
  if (!l.valid()) return false;
  uint32_t bl = l.bline ? l.bline : l.line, bc = l.bline ? l.bcol : l.col;
  uint32_t el = l.eline ? l.eline : l.line, ec = l.eline ? l.ecol : l.col + 1;
  if (line < bl || line > el) return false;
  if (line == bl && col < bc) return false;
  if (line == el && col >= ec) return false;
  return true;
}

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

class Server {
 public:
  explicit Server(Transport& t) : t_(t) {}

  int run() {
    for (;;) {
      ReadResult r = t_.read();
      if (r.kind == ReadResult::Eof) return shutdown_ ? 0 : 1;
      if (r.kind != ReadResult::Message) {
        replyError(nullptr, r.kind == ReadResult::BadJson ? kParseError : kInvalidRequest, r.error);
        continue;
      }
      if (!r.json.is_object() || !r.json.contains("method") || !r.json["method"].is_string()) {
        if (r.json.is_object() && r.json.contains("id")) continue;  // a response to us: ignore
        replyError(nullptr, kInvalidRequest, "not a JSON-RPC request");
        continue;
      }
      std::string method = r.json["method"];
      json id = r.json.contains("id") ? r.json["id"] : json();
      json params = r.json.contains("params") ? r.json["params"] : json::object();
      if (method == "exit") return shutdown_ ? 0 : 1;
      try {
        dispatch(method, id, params, r.json.contains("id"));
      } catch (const std::exception& e) {
        if (r.json.contains("id")) replyError(id, kInvalidRequest, std::string("bad request: ") + e.what());
      }
    }
  }

 private:
  void dispatch(const std::string& method, const json& id, const json& params, bool isRequest) {
    if (method == "initialize") {
      initialized_ = true;
      reply(id, {{"capabilities",
                  {{"textDocumentSync", 1},
                   {"hoverProvider", true},
                   {"definitionProvider", true},
                   {"documentSymbolProvider", true},
                   {"completionProvider", {{"triggerCharacters", {"."}}}}}},
                 {"serverInfo", {{"name", "tdl"}, {"version", TDL_VERSION}}}});
      return;
    }
    if (!initialized_) {
      if (isRequest) replyError(id, kServerNotInitialized, "initialize first");
      return;
    }
    if (method == "initialized" || method == "$/cancelRequest" || method == "$/setTrace") return;
    if (method == "shutdown") {
      shutdown_ = true;
      reply(id, nullptr);
      return;
    }
    if (method == "textDocument/didOpen") {
      const json& td = params.at("textDocument");
      update(td.at("uri"), td.at("text"));
      return;
    }
    if (method == "textDocument/didChange") {
      const json& changes = params.at("contentChanges");
      if (!changes.empty()) update(params.at("textDocument").at("uri"), changes.back().at("text"));
      return;
    }
    if (method == "textDocument/didClose") {
      std::string uri = params.at("textDocument").at("uri");
      docs_.erase(uri);
      t_.write({{"jsonrpc", "2.0"}, {"method", "textDocument/publishDiagnostics"},
                {"params", {{"uri", uri}, {"diagnostics", json::array()}}}});
      return;
    }
    if (method == "textDocument/hover") return reply(id, hover(params));
    if (method == "textDocument/definition") return reply(id, definition(params));
    if (method == "textDocument/documentSymbol") return reply(id, symbols(params));
    if (method == "textDocument/completion") return reply(id, completion(params));
    if (isRequest) replyError(id, kMethodNotFound, "unsupported method " + method);
  }

  void reply(const json& id, const json& result) { t_.write({{"jsonrpc", "2.0"}, {"id", id}, {"result", result}}); }
  void replyError(const json& id, int code, const std::string& msg) {
    t_.write({{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", code}, {"message", msg}}}});
  }

  void update(const std::string& uri, const std::string& text) {
    Document& d = docs_[uri];
    d.path = uriToPath(uri);
    d.text = text;
    d.comp = std::make_unique<Compilation>();
    d.comp->diags.setPrint(false);
    d.comp->load(d.path, SemaOptions{}, &d.text);
    publish(uri, d);
  }

  json range(const Compilation& c, const Loc& l) {
    const SourceFile& f = c.sources.file(l.file);
    uint32_t bl = l.bline ? l.bline : l.line, bc = l.bline ? l.bcol : l.col;
    uint32_t el = l.eline ? l.eline : l.line, ec = l.eline ? l.ecol : l.col + 1;
    auto pos = [&](uint32_t line, uint32_t col) {
      return json{{"line", line ? line - 1 : 0}, {"character", utf16Col(f.lineText(line), col)}};
    };
    return {{"start", pos(bl, bc)}, {"end", pos(el, ec)}};
  }

  void publish(const std::string& uri, Document& d) {
    json list = json::array();
    for (const Diagnostic& diag : d.comp->diags.all()) {
      json item = {{"severity", diag.severity == Severity::Error ? 1 : 2}, {"source", "tdl"}, {"message", diag.message}};
      if (diag.loc.file == 0 && diag.loc.valid()) {
        item["range"] = range(*d.comp, diag.loc);
      } else {
        // An error in an imported file (or one without a position): show it at the top.
        std::string where = diag.loc.file < d.comp->sources.size() ? d.comp->diags.locString(diag.loc) : "";
        item["message"] = where.empty() ? diag.message : where + ": " + diag.message;
        item["range"] = {{"start", {{"line", 0}, {"character", 0}}}, {"end", {{"line", 0}, {"character", 0}}}};
      }
      list.push_back(item);
    }
    t_.write({{"jsonrpc", "2.0"}, {"method", "textDocument/publishDiagnostics"},
              {"params", {{"uri", uri}, {"diagnostics", list}}}});
  }

  // The document and 1-based line / byte column of a request's position.
  Document* locate(const json& params, uint32_t& line, uint32_t& col) {
    auto it = docs_.find(params.at("textDocument").at("uri").get<std::string>());
    if (it == docs_.end() || !it->second.comp) return nullptr;
    const json& p = params.at("position");
    line = p.at("line").get<uint32_t>() + 1;
    const SourceFile& f = it->second.comp->sources.file(0);
    col = byteCol(f.lineText(line), p.at("character").get<uint32_t>());
    return &it->second;
  }

  std::optional<Hit> find(Document& d, uint32_t line, uint32_t col) {
    if (d.comp->loader->modules().empty()) return std::nullopt;
    Finder finder(0, line, col);
    finder.stmts(d.comp->loader->main().stmts);
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

  static std::string markdown(const DocEntry& e) {
    std::string md = "```tdl\n" + e.signature + "\n```";
    if (!e.text.empty()) md += "\n\n" + e.text;
    if (!e.example.empty()) md += "\n\nExample: `" + e.example + "`";
    return md;
  }

  json hover(const json& params) {
    uint32_t line, col;
    Document* d = locate(params, line, col);
    if (!d) return nullptr;
    auto h = find(*d, line, col);
    if (!h) return nullptr;
    std::string value = "```tdl\n" + h->desc + "\n```";
    if (auto e = docOf(*d->comp, h->desc, h->decl)) value = markdown(*e);
    return {{"contents", {{"kind", "markdown"}, {"value", value}}}, {"range", range(*d->comp, h->range)}};
  }

  json definition(const json& params) {
    uint32_t line, col;
    Document* d = locate(params, line, col);
    if (!d) return nullptr;
    auto h = find(*d, line, col);
    if (!h || !h->decl.valid() || h->decl.file >= d->comp->sources.size()) return nullptr;
    std::string uri = h->decl.file == 0 ? params.at("textDocument").at("uri").get<std::string>()
                                        : pathToUri(d->comp->sources.file(h->decl.file).path);
    return {{"uri", uri}, {"range", range(*d->comp, h->decl)}};
  }

  json symbols(const json& params) {
    json out = json::array();
    auto it = docs_.find(params.at("textDocument").at("uri").get<std::string>());
    if (it == docs_.end() || it->second.comp->loader->modules().empty()) return out;
    Compilation& c = *it->second.comp;
    auto add = [&](const std::string& name, const std::string& detail, int kind, const Loc& whole, const Loc& sel) {
      out.push_back({{"name", name}, {"detail", detail}, {"kind", kind}, {"range", range(c, whole)},
                     {"selectionRange", range(c, sel)}, {"children", json::array()}});
    };
    std::function<void(const Pattern&, const Stmt&)> pat = [&](const Pattern& p, const Stmt& s) {
      if (p.kind == Pattern::Name) add(p.name, s.isVar ? "var" : "let", s.isVar ? kSymVariable : kSymConstant, s.loc, p.loc);
      for (auto& e : p.elems) pat(e, s);
    };
    for (auto& s : c.loader->main().stmts) {
      if (s->kind == StmtKind::Fn) add(s->fn->name, fnSignature(*s->fn), kSymFunction, s->loc, s->fn->loc);
      else if (s->kind == StmtKind::Let) pat(s->pattern, *s);
      else if (s->kind == StmtKind::Import) add(s->alias, "import " + s->str, kSymModule, s->loc, s->pathLoc);
    }
    return out;
  }

  json completion(const json& params) {
    json items = json::array();
    std::set<std::string> seen;
    auto add = [&](const std::string& label, int kind, const std::string& detail, const std::string& doc = "") {
      if (!seen.insert(label).second) return;
      json item = {{"label", label}, {"kind", kind}, {"detail", detail}};
      if (!doc.empty()) item["documentation"] = {{"kind", "markdown"}, {"value", doc}};
      items.push_back(std::move(item));
    };
    auto addFn = [&](Compilation& c, const FnDecl& f, const std::string& qualifier) {
      DocEntry e = fnDoc(c.sources, f, qualifier);
      add(f.name, kItemFunction, e.signature, e.text);
    };
    uint32_t line, col;
    Document* d = locate(params, line, col);
    if (!d) return items;
    // After `m.`: the members of module m.
    std::string before(d->comp->sources.file(0).lineText(line).substr(0, col - 1));
    std::smatch m;
    static const std::regex member(R"(([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z0-9_]*)$)");
    auto& mods = d->comp->loader->modules();
    if (std::regex_search(before, m, member) && !mods.empty()) {
      for (auto& s : mods[0]->stmts) {
        if (s->kind != StmtKind::Import || s->alias != m[1].str() || s->module < 0) continue;
        Module& mod = *mods[s->module];
        for (auto& st : mod.stmts) {
          if (st->kind == StmtKind::Fn) addFn(*d->comp, *st->fn, s->alias);
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
        if (s->kind == StmtKind::Fn) addFn(*d->comp, *s->fn, "");
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

  Transport& t_;
  std::map<std::string, Document> docs_;
  bool initialized_ = false, shutdown_ = false;
};

}  // namespace

int runLanguageServer(FILE* in, FILE* out) {
  Transport t(in, out);
  Server s(t);
  return s.run();
}

}  // namespace tdl::lsp
