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
#include "tools/lsp/Analysis.h"
#include "tools/lsp/Transport.h"

namespace tdl::lsp {

namespace {

using json = nlohmann::json;

// JSON-RPC error codes.
constexpr int kParseError = -32700, kInvalidRequest = -32600, kMethodNotFound = -32601, kInvalidParams = -32602;
constexpr int kServerNotInitialized = -32002;

// LSP SymbolKind / CompletionItemKind values used here.
constexpr int kSymModule = 2, kSymFunction = 12, kSymVariable = 13, kSymConstant = 14;

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

// UTF-16 column (LSP) of a 1-based column in `line`, and back. The front end's columns count
// code points (ANTLR reads the decoded text), as do Python's; LSP's count UTF-16 units, two
// for a code point past U+FFFF (an emoji).
uint32_t utf16Col(std::string_view line, uint32_t col) {
  uint32_t units = 0, points = 0;
  for (size_t i = 0; i < line.size() && points + 1 < col; ++i) {
    auto c = static_cast<unsigned char>(line[i]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte
    units += c >= 0xF0 ? 2 : 1;
    ++points;
  }
  return units + (points + 1 < col ? col - 1 - points : 0);  // past the end: one unit a column
}
uint32_t pointCol(std::string_view line, uint32_t utf16) {
  uint32_t units = 0, points = 0;
  for (size_t i = 0; i < line.size() && units < utf16; ++i) {
    auto c = static_cast<unsigned char>(line[i]);
    if ((c & 0xC0) == 0x80) continue;
    units += c >= 0xF0 ? 2 : 1;
    ++points;
  }
  return points + 1 + (units < utf16 ? utf16 - units : 0);
}

struct Document {
  std::string path;
  std::string text;
  std::unique_ptr<Compilation> comp;
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
        bool isObject = r.json.is_object();
        if (isObject && r.json.contains("id") && !r.json.contains("method")) continue;  // a response to us: ignore
        json badId = isObject && r.json.contains("id") && (r.json["id"].is_string() || r.json["id"].is_number_integer())
                         ? r.json["id"] : json();
        replyError(badId, kInvalidRequest,
                   isObject && r.json.contains("method") ? "not a JSON-RPC request: \"method\" must be a string"
                                                         : "not a JSON-RPC request");
        continue;
      }
      std::string method = r.json["method"];
      json id = r.json.contains("id") ? r.json["id"] : json();
      json params = r.json.contains("params") ? r.json["params"] : json::object();
      if (method == "exit") return shutdown_ ? 0 : 1;
      try {
        dispatch(method, id, params, r.json.contains("id"));
      } catch (const json::exception&) {  // a parameter missing or of the wrong type
        if (r.json.contains("id"))
          replyError(id, kInvalidParams, fmt::format("invalid params for {}: a field is missing or of the wrong type", method));
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
    if (shutdown_) {  // after shutdown only exit is expected (LSP: requests are InvalidRequest)
      if (isRequest) replyError(id, kInvalidRequest, "the server is shutting down: only 'exit' is expected");
      return;
    }
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
      json item = {{"severity", diag.severity == Severity::Error ? 1 : diag.severity == Severity::Warning ? 2 : 3}, {"source", "tdl"}, {"message", diag.message}};
      if (diag.loc.file == 0 && diag.loc.valid()) {
        item["range"] = range(*d.comp, diag.loc);
      } else {
        // An error in an imported file: shown at the import that brings it in (the chain of
        // imports followed back to this document), its own place as related information;
        // one without a position at the top.
        const auto& src = d.comp->sources;
        bool inFile = diag.loc.file < src.size() && diag.loc.valid();
        std::string where = inFile ? d.comp->diags.locString(diag.loc) : "";
        item["message"] = where.empty() ? diag.message : where + ": " + diag.message;
        item["range"] = {{"start", {{"line", 0}, {"character", 0}}}, {"end", {{"line", 0}, {"character", 0}}}};
        Loc at = inFile ? src.file(diag.loc.file).importedAt : Loc{};
        for (size_t hops = 0; at.valid() && at.file != 0 && at.file < src.size() && hops < src.size(); ++hops)
          at = src.file(at.file).importedAt;
        if (at.valid() && at.file == 0) item["range"] = range(*d.comp, at);
        if (inFile)
          item["relatedInformation"] = json::array(
              {{{"location", {{"uri", pathToUri(src.file(diag.loc.file).path)}, {"range", range(*d.comp, diag.loc)}}},
                {"message", diag.message}}});
      }
      list.push_back(item);
    }
    t_.write({{"jsonrpc", "2.0"}, {"method", "textDocument/publishDiagnostics"},
              {"params", {{"uri", uri}, {"diagnostics", list}}}});
  }

  // The document and 1-based line / column (code points) of a request's position.
  Document* locate(const json& params, uint32_t& line, uint32_t& col) {
    auto it = docs_.find(params.at("textDocument").at("uri").get<std::string>());
    if (it == docs_.end() || !it->second.comp) return nullptr;
    const json& p = params.at("position");
    line = p.at("line").get<uint32_t>() + 1;
    const SourceFile& f = it->second.comp->sources.file(0);
    col = pointCol(f.lineText(line), p.at("character").get<uint32_t>());
    return &it->second;
  }

  std::optional<Hit> find(Document& d, uint32_t line, uint32_t col) { return findAt(*d.comp, line, col); }

  json hover(const json& params) {
    uint32_t line, col;
    Document* d = locate(params, line, col);
    if (!d) return nullptr;
    auto h = find(*d, line, col);
    if (!h) return nullptr;
    std::string value = "```tdl\n" + h->desc + "\n```";
    if (auto e = docOf(*d->comp, h->desc, h->decl)) value = docMarkdown(*e);
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
    uint32_t line, col;
    Document* d = locate(params, line, col);
    if (!d) return items;
    std::vector<Completion> list = completionsAt(*d->comp, line, col);
    // `nn.` just typed: the document does not parse while the member is missing, so its
    // imports are read from it without the `.` (and the member's start).
    if (!d->comp->loader || d->comp->loader->modules().empty()) {
      std::string_view lineText = d->comp->sources.size() ? d->comp->sources.file(0).lineText(line) : "";
      size_t at = 0;  // the cursor's byte in the line (col counts code points)
      auto cont = [&](size_t i) { return (static_cast<unsigned char>(lineText[i]) & 0xC0) == 0x80; };
      for (uint32_t p = 1; at < lineText.size() && p < col; ++p)
        for (++at; at < lineText.size() && cont(at);) ++at;
      std::string before(lineText.substr(0, at));
      static const std::regex member(R"([A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]*)$)");
      std::smatch m;
      // The line's start in the document: the front end's lines (a lone CR ends one too),
      // shifted by a byte order mark it dropped.
      size_t lineStart = std::string::npos;
      if (d->comp->sources.size() && line >= 1 && line <= d->comp->sources.file(0).lineCount())
        lineStart = d->comp->sources.file(0).lineStarts[line - 1] + (d->text.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0);
      if (std::regex_search(before, m, member) && lineStart != std::string::npos) {
        std::string text = d->text;
        text.erase(lineStart + static_cast<size_t>(m.position(1)), static_cast<size_t>(m.length(1)));
        Compilation patched;
        patched.diags.setPrint(false);
        patched.load(d->path, SemaOptions{}, &text);
        if (patched.loader && !patched.loader->modules().empty()) list = completionsAt(patched, line, col, &before);
      }
    }
    for (const Completion& c : list) {
      json item = {{"label", c.label}, {"kind", c.kind}, {"detail", c.detail}};
      if (!c.doc.empty()) item["documentation"] = {{"kind", "markdown"}, {"value", c.doc}};
      items.push_back(std::move(item));
    }
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
