// `tdl jupyter kernel -f CONNECTION_FILE`: a Jupyter kernel for TDL (issue 23), on xeus
// (Debian's xeus-dev: the Jupyter wire protocol, ZeroMQ sockets, signing, heartbeat and
// history are xeus's; docs/decisions.md says why). One eager session (vm::ReplSession, the
// REPL's) lives across cells: names, imports, compiled graph fns and their trace cache.
//
// What a cell shows:
//   - print() and everything else written to stdout/stderr: stream messages (the C stdio
//     streams are replaced by ones that publish, on the executing thread);
//   - the value of each top-level expression statement (as the REPL prints it): an
//     execute_result, text/plain as print writes it and, for tensors, an HTML table;
//   - plot(): its SVG inline (and the file as in a script); progress(): one output line
//     updated in place (display_data + update_display_data);
//   - errors: an error reply with the caret snippet and call chain, lines named
//     `In [N]:LINE:COL` for the cell they are in.
// Completion and inspection use the language server's analysis (tools/lsp/Analysis.h) on the
// session's source plus the cell. SIGINT (Jupyter's interrupt_mode "signal") sets the
// interrupt flag (runtime/Interrupt.h) in a signal handler; the running loop stops with
// "interrupted" and the session survives.
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fnmatch.h>

#include <map>
#include <set>
#include <regex>

#include <nlohmann/json.hpp>
#include <xeus/xhelper.hpp>
#include <xeus/xinterpreter.hpp>
#include <xeus/xkernel.hpp>
#include <xeus/xkernel_configuration.hpp>
#include <xeus/xserver_zmq.hpp>
#include <zmq.hpp>

#include "frontend/Doc.h"
#include "frontend/ModuleLoader.h"
#include "runtime/Interrupt.h"
#include "runtime/Io.h"
#include "runtime/Print.h"
#include "tools/Commands.h"
#include "tools/jupyter/Logo.h"
#include "tools/lsp/Analysis.h"
#include "vm/Builtins.h"
#include "vm/Format.h"
#include "vm/ValueOps.h"
#include "vm/Vm.h"

namespace nl = nlohmann;

namespace tdl {

namespace {

// ------------------------------------------------------------ rich output

// Indices shown along an axis of n entries: all, or the first and last edge items around
// a gap (-1) when the tensor is summarised, as print does.
std::vector<int64_t> shown(int64_t n, bool summarize) {
  std::vector<int64_t> v;
  if (summarize && n > 2 * rt::kPrintEdgeItems) {
    for (int64_t i = 0; i < rt::kPrintEdgeItems; ++i) v.push_back(i);
    v.push_back(-1);
    for (int64_t i = n - rt::kPrintEdgeItems; i < n; ++i) v.push_back(i);
  } else {
    for (int64_t i = 0; i < n; ++i) v.push_back(i);
  }
  return v;
}

// A tensor of rank 1 or 2 as an HTML table (a row vector for rank 1), summarised as print
// summarises; higher ranks as print's text in <pre>. A caption gives dtype and shape.
std::string tensorHtml(const rt::Tensor& t) {
  std::string caption = vm::xmlEscape(t.type_str());
  if (t.rank() > 2 || t.numel() == 0)
    return fmt::format("<div><pre>{}</pre><small>{}</small></div>", vm::xmlEscape(rt::format_tensor(t)), caption);
  bool summarize = t.numel() > rt::print_options().threshold;
  int64_t rows = t.rank() == 2 ? t.shape()[0] : 1, cols = t.shape().back();
  std::string html = "<table class=\"tdl-tensor\" style=\"font-family: monospace\">";
  html += fmt::format("<caption style=\"caption-side: bottom; text-align: left\">{}</caption><tbody>", caption);
  std::vector<int64_t> rs = shown(rows, summarize), cs = shown(cols, summarize);
  for (int64_t r : rs) {
    html += "<tr>";
    for (int64_t c : cs) {
      if (r < 0 || c < 0) html += "<td style=\"text-align: center\">&#8942;</td>";
      else html += "<td style=\"text-align: right\">" + vm::xmlEscape(rt::format_element(t, r * cols + c)) + "</td>";
    }
    html += "</tr>";
  }
  return html + "</tbody></table>";
}

// ------------------------------------------------------------ C streams to iopub

using StreamFn = std::function<void(const char*, size_t)>;

ssize_t cookieWrite(void* cookie, const char* buf, size_t size) {
  (*static_cast<StreamFn*>(cookie))(buf, size);
  return static_cast<ssize_t>(size);
}

FILE* publishingStream(StreamFn* fn) {
  cookie_io_functions_t io{};
  io.write = cookieWrite;
  FILE* f = fopencookie(fn, "w", io);
  if (f) setvbuf(f, nullptr, _IOLBF, 1 << 14);
  return f;
}

// Code-point offset -> byte offset in UTF-8 text (Jupyter counts cursor positions in
// code points).
size_t byteOffset(const std::string& s, int cursor) {
  size_t i = 0;
  for (int n = 0; i < s.size() && n < cursor; ++n) {
    ++i;
    while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) ++i;
  }
  return i;
}
int codePoints(const std::string& s, size_t bytes) {
  int n = 0;
  for (size_t i = 0; i < bytes && i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) ++n;
  return n;
}

bool identChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// ------------------------------------------------------------ history
// The cells run in this session, for history requests (tail, range, search). Written here:
// xeus 2.4's in-memory manager answers with the session as a string and mis-shaped output
// entries, which the protocol's schema rejects.
class History : public xeus::xhistory_manager {
  struct Entry {
    int session, line;
    std::string input, output;
  };
  std::vector<Entry> entries_;

  nl::json item(const Entry& e, bool output) const {
    if (output) return nl::json::array({e.session, e.line, nl::json::array({e.input, e.output})});
    return nl::json::array({e.session, e.line, e.input});
  }
  static nl::json reply(nl::json history) { return {{"status", "ok"}, {"history", std::move(history)}}; }

  void configure_impl() override {}
  // Numbered here, 1, 2, ... (xeus 2.4 gives every input line 1).
  void store_inputs_impl(int session, int, const std::string& input, const std::string& output) override {
    entries_.push_back(Entry{session, static_cast<int>(entries_.size()) + 1, input, output});
  }
  nl::json get_tail_impl(int n, bool, bool output) const override {
    nl::json h = nl::json::array();
    size_t from = n >= 0 && static_cast<size_t>(n) < entries_.size() ? entries_.size() - static_cast<size_t>(n) : 0;
    for (size_t i = from; i < entries_.size(); ++i) h.push_back(item(entries_[i], output));
    return reply(std::move(h));
  }
  nl::json get_range_impl(int session, int start, int stop, bool, bool output) const override {
    nl::json h = nl::json::array();
    for (const Entry& e : entries_) {
      if (session > 0 && e.session != session) continue;  // 0 or negative: this session
      if (e.line >= start && (stop <= 0 || e.line < stop)) h.push_back(item(e, output));
    }
    return reply(std::move(h));
  }
  nl::json search_impl(const std::string& pattern, bool, bool output, int n, bool unique) const override {
    std::vector<const Entry*> found;
    std::set<std::string> seen;
    for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {  // newest first
      if (fnmatch(pattern.c_str(), it->input.c_str(), 0) != 0) continue;
      if (unique && !seen.insert(it->input).second) continue;
      found.push_back(&*it);
      if (n > 0 && static_cast<int>(found.size()) == n) break;
    }
    nl::json h = nl::json::array();
    for (auto it = found.rbegin(); it != found.rend(); ++it) h.push_back(item(**it, output));
    return reply(std::move(h));
  }
};

// ------------------------------------------------------------ the interpreter

class TdlInterpreter : public xeus::xinterpreter {
 public:
  TdlInterpreter() : session_(vm::VmOptions{}) {}
  ~TdlInterpreter() override { vm::setDisplayHooks(nullptr); }

 private:
  void configure_impl() override {
    outFn_ = [this](const char* p, size_t n) { publish_stream("stdout", std::string(p, n)); };
    errFn_ = [this](const char* p, size_t n) { publish_stream("stderr", std::string(p, n)); };
    if (FILE* o = publishingStream(&outFn_)) stdout = o;
    if (FILE* e = publishingStream(&errFn_)) stderr = e;
    session_.setQuiet(true);
    session_.setValueSink([this](const vm::Value& v) { showValue(v); });
    hooks_.svg = [this](const std::string& svg) {
      flushStreams();
      display_data({{"image/svg+xml", svg}, {"text/plain", "<plot>"}}, nl::json::object(), nl::json::object());
    };
    hooks_.progress = [this](const void* bar, const std::string& line, bool last) {
      flushStreams();
      auto it = bars_.find(bar);
      nl::json data = {{"text/plain", line}};
      if (it == bars_.end()) {
        std::string id = fmt::format("tdl-progress-{}-{}", getpid(), ++barCount_);
        bars_[bar] = id;
        display_data(data, nl::json::object(), {{"display_id", id}});
      } else {
        update_display_data(data, nl::json::object(), {{"display_id", it->second}});
      }
      if (last) bars_.erase(bar);
    };
    vm::setDisplayHooks(&hooks_);
  }

  static void flushStreams() {
    std::fflush(stdout);
    std::fflush(stderr);
  }

  static nl::json mimeBundle(const vm::Value& v) {
    nl::json data = {{"text/plain", vm::str(v)}};
    if (v.isTensor()) {
      const rt::Tensor& t = v.as<vm::TensorObj>()->t;
      if (t.rank() > 0) data["text/html"] = tensorHtml(t);
    }
    return data;
  }

  // A cell's value (not for a silent execute_request, as IPython).
  void showValue(const vm::Value& v) {
    if (v.isNone() || silent_) return;
    flushStreams();
    publish_execution_result(count_, mimeBundle(v), nl::json::object());
  }

  // `<repl>:L:C` (a line of the whole session) as `In [N]:l:C` (a line of cell N).
  std::string cellLocations(const std::string& text) const {
    static const std::regex loc(R"(<repl>:(\d+):(\d+))");
    std::string out;
    auto begin = std::sregex_iterator(text.begin(), text.end(), loc);
    size_t last = 0;
    for (auto it = begin; it != std::sregex_iterator(); ++it) {
      const std::smatch& m = *it;
      out += text.substr(last, static_cast<size_t>(m.position(0)) - last);
      size_t line = std::stoul(m[1].str());
      std::string where = m[0].str();
      for (auto c = cells_.rbegin(); c != cells_.rend(); ++c)
        if (line > c->first) {
          where = fmt::format("In [{}]:{}:{}", c->second, line - c->first, m[2].str());
          break;
        }
      out += where;
      last = static_cast<size_t>(m.position(0) + m.length(0));
    }
    return out + text.substr(last);
  }

  nl::json errorReply(const std::string& ename, const std::string& evalue, const std::vector<std::string>& rendered) {
    std::vector<std::string> trace;
    for (const std::string& r : rendered) {
      std::string text = cellLocations(r);
      size_t start = 0;
      while (start <= text.size()) {
        size_t nl = text.find('\n', start);
        if (nl == std::string::npos) nl = text.size();
        if (nl > start) trace.push_back(text.substr(start, nl - start));
        start = nl + 1;
      }
    }
    publish_execution_error(ename, evalue, trace);
    // (xeus 2.4's create_error_reply swaps ename and evalue.)
    return {{"status", "error"}, {"ename", ename}, {"evalue", evalue}, {"traceback", trace}};
  }

  // The reply's user_expressions (Jupyter's execute_request): each expression evaluated in
  // the session after the cell, its value as text (or the error), as IPython does. Each is
  // parenthesized, so that only an expression is taken (not a statement that defines a name).
  nl::json userExpressions(const nl::json& exprs) {
    nl::json out = nl::json::object();
    if (!exprs.is_object()) return out;
    for (const auto& [name, e] : exprs.items()) {
      if (!e.is_string()) {
        out[name] = {{"status", "error"}, {"ename", "Error"}, {"evalue", "a user expression must be a string"},
                     {"traceback", nl::json::array()}};
        continue;
      }
      const std::string text = e.get<std::string>();
      if (text.find_first_of("\n;") != std::string::npos || vm::ReplSession::openBrackets(text) != 0) {
        out[name] = {{"status", "error"}, {"ename", "Error"},
                     {"evalue", "a user expression is one line: an expression, without ';'"}, {"traceback", nl::json::array()}};
        continue;
      }
      nl::json data = nl::json::object();
      session_.setValueSink([&](const vm::Value& v) { data = mimeBundle(v); });
      cells_.emplace_back(session_.linesSoFar(), count_);  // its errors name the cell's number
      session_.eval("(" + text + "\n)");
      session_.setValueSink([this](const vm::Value& v) { showValue(v); });
      flushStreams();
      if (session_.lastFailed()) {
        std::vector<std::string> trace;
        for (const std::string& r : session_.lastErrors()) trace.push_back(cellLocations(r));
        out[name] = {{"status", "error"}, {"ename", "Error"}, {"evalue", session_.lastMessage()}, {"traceback", trace}};
      } else {
        if (data.empty()) data["text/plain"] = "none";
        out[name] = {{"status", "ok"}, {"data", data}, {"metadata", nl::json::object()}};
      }
    }
    return out;
  }

  nl::json execute_request_impl(int execution_counter, const std::string& code, bool silent,
                                bool /*store_history*/, nl::json user_expressions,
                                bool /*allow_stdin*/) override {
    // xeus counts every cell that is not silent (store_history=false included).
    count_ = execution_counter;
    silent_ = silent;
    rt::clear_interrupt();  // one that came while idle does not stop this cell
    std::string text = code;
    size_t first = text.find_first_not_of(" \t\r\n");
    if (first != std::string::npos && text[first] == ':') return command(text.substr(first));
    cells_.emplace_back(session_.linesSoFar(), execution_counter);
    bool goOn = true;
    try {
      goOn = session_.eval(text);
    } catch (const std::exception& e) {  // ReplSession keeps these; this is a last resort
      flushStreams();
      return errorReply("InternalError", e.what(), {fmt::format("internal error: {}", e.what())});
    }
    flushStreams();
    for (const std::string& w : session_.lastWarnings()) publish_stream("stderr", cellLocations(w));
    if (!goOn)
      publish_stream("stderr", fmt::format("exit({}) ends a script; in a notebook the session goes on "
                                           "(restart the kernel for a fresh one)\n", session_.exitCode()));
    if (session_.lastFailed()) {
      bool interrupted = session_.lastMessage() == rt::kInterruptedMessage;
      return errorReply(interrupted ? "KeyboardInterrupt" : "Error", session_.lastMessage(), session_.lastErrors());
    }
    return xeus::create_successful_reply(nl::json::array(), userExpressions(user_expressions));
  }

  // A cell that starts with ':' is a REPL command (:help NAME shows in the pager).
  nl::json command(const std::string& line) {
    std::string cmd = line.substr(0, line.find_last_not_of(" \t\r\n") + 1);
    if (cmd.rfind(":help ", 0) == 0 || cmd.rfind(":h ", 0) == 0) {
      std::string name = cmd.substr(cmd.find(' ') + 1), out, err;
      name = name.substr(name.find_first_not_of(" \t") == std::string::npos ? name.size() : name.find_first_not_of(" \t"));
      if (!docFor(name, out, err)) return errorReply("Error", err, {"error: " + err});
      nl::json page = {{"source", "page"}, {"data", {{"text/plain", out}}}, {"start", 0}};
      return xeus::create_successful_reply(nl::json::array({page}));
    }
    bool keepGoing = true;
    cells_.emplace_back(session_.linesSoFar(), count_);  // :type and :time run code too
    replCommand(session_, cmd, keepGoing);
    flushStreams();
    if (session_.lastFailed()) return errorReply("Error", session_.lastMessage(), session_.lastErrors());
    return xeus::create_successful_reply();
  }

  // The session's source plus `code`, analysed; (line, col) of byte offset `at` in code.
  struct Analysis {
    std::unique_ptr<Compilation> comp = std::make_unique<Compilation>();
    uint32_t line = 0, col = 0;
    std::string before;  // the cursor's line up to it
  };
  void analyse(Analysis& a, const std::string& code, size_t at) {
    std::string text = session_.source() + code + "\n";
    a.comp->diags.setPrint(false);
    size_t lineStart = code.rfind('\n', at == 0 ? 0 : at - 1);
    lineStart = lineStart == std::string::npos || at == 0 ? 0 : lineStart + 1;
    a.before = code.substr(lineStart, at - lineStart);
    a.line = static_cast<uint32_t>(session_.linesSoFar() + 1 +
                                   static_cast<size_t>(std::count(code.begin(), code.begin() + static_cast<long>(at), '\n')));
    // Columns count code points, as the front end's do (not bytes: "é" + x).
    a.col = static_cast<uint32_t>(codePoints(code, at) - codePoints(code, lineStart) + 1);
    a.comp->load("<repl>", SemaOptions{true, true}, &text);
    if (a.comp->modules().empty()) {
      // The cell does not parse (it is being typed): the earlier cells' names still count.
      a.comp = std::make_unique<Compilation>();
      a.comp->diags.setPrint(false);
      std::string earlier = session_.source();
      a.comp->load("<repl>", SemaOptions{true, true}, &earlier);
    }
  }

  nl::json complete_request_impl(const std::string& code, int cursor_pos) override {
    size_t at = byteOffset(code, cursor_pos);
    size_t start = at;
    while (start > 0 && identChar(code[start - 1])) --start;
    std::string prefix = code.substr(start, at - start);
    Analysis a;
    analyse(a, code, at);
    nl::json matches = nl::json::array(), types = nl::json::array();
    std::vector<lsp::Completion> items;
    if (a.comp->loader) items = lsp::completionsAt(*a.comp, a.line, a.col, &a.before);
    // After `x.` with x a value of the session: its fields (records), members (tensors)
    // or methods (lists, dicts), from the value itself.
    static const std::regex member(R"(([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\.(\w*)$)");
    std::smatch m;
    vm::Value v;
    if (std::regex_search(a.before, m, member) && valueAt(m[1].str(), v)) {
      std::vector<lsp::Completion> fields;
      auto add = [&](const std::string& f, int kind, const std::string& detail) {
        fields.push_back(lsp::Completion{f, kind, detail, ""});
      };
      switch (v.tag()) {
        case vm::Tag::Record: {
          const auto* r = v.as<vm::RecordObj>();
          for (size_t i = 0; i < r->names->size(); ++i)
            add((*r->names)[i], lsp::kItemVariable, vm::typeText(r->vals[i]));
          break;
        }
        case vm::Tag::Tensor:
        case vm::Tag::Scalar:
          for (const std::string& f : vm::tensorFields()) add(f, lsp::kItemVariable, "tensor " + f);
          break;
        case vm::Tag::Dict:
          for (const char* f : {"keys", "values", "items", "get", "pop"}) add(f, lsp::kItemFunction, "dict method");
          break;
        case vm::Tag::List:
          for (const char* f : {"append", "extend", "pop", "insert"}) add(f, lsp::kItemFunction, "list method");
          break;
        case vm::Tag::Str:
#define TDL_STR_METHOD(n) add(#n, lsp::kItemFunction, "string method");
#include "vm/str_methods.def"
          break;
        default: break;
      }
      if (!fields.empty()) items = std::move(fields);
    }
    for (const lsp::Completion& c : items) {
      if (c.label.rfind(prefix, 0) != 0) continue;
      matches.push_back(c.label);
      const char* type = c.kind == lsp::kItemFunction ? "function"
                         : c.kind == lsp::kItemModule ? "module"
                         : c.kind == lsp::kItemKeyword ? "keyword"
                                                       : "instance";
      types.push_back({{"start", codePoints(code, start)}, {"end", cursor_pos}, {"text", c.label}, {"type", type},
                       {"signature", c.detail}});
    }
    return xeus::create_complete_reply(matches, codePoints(code, start), cursor_pos,
                                       {{"_jupyter_types_experimental", types}});
  }

  // The session's value at a dotted path of record fields (`p.layer1.w`).
  bool valueAt(const std::string& path, vm::Value& v) const {
    size_t dot = path.find('.');
    if (!session_.lookup(path.substr(0, dot), v)) return false;
    while (dot != std::string::npos) {
      size_t next = path.find('.', dot + 1);
      std::string field = path.substr(dot + 1, next == std::string::npos ? std::string::npos : next - dot - 1);
      if (v.tag() != vm::Tag::Record) return false;
      const auto* r = v.as<vm::RecordObj>();
      int i = r->find(field);
      if (i < 0) return false;
      vm::Value inner = r->vals[static_cast<size_t>(i)];
      v = std::move(inner);
      dot = next;
    }
    return true;
  }

  // The dotted name at the cursor, else the callee of the innermost open call before it.
  static std::string nameAt(const std::string& code, size_t at, size_t& pos) {
    auto isName = [](char c) { return identChar(c) || c == '.'; };
    size_t b = at, e = at;
    while (b > 0 && isName(code[b - 1])) --b;
    while (e < code.size() && identChar(code[e])) ++e;
    if (e > b) {
      pos = b;
      return code.substr(b, e - b);
    }
    int depth = 0;
    for (size_t i = at; i > 0; --i) {
      char c = code[i - 1];
      if (c == ')') ++depth;
      else if (c == '(' && depth-- == 0) {
        size_t f = i - 1;
        while (f > 0 && (code[f - 1] == ' ' || code[f - 1] == '\t')) --f;
        size_t g = f;
        while (g > 0 && isName(code[g - 1])) --g;
        pos = g;
        return code.substr(g, f - g);
      }
    }
    return "";
  }

  nl::json inspect_request_impl(const std::string& code, int cursor_pos, int /*detail_level*/) override {
    size_t at = byteOffset(code, cursor_pos), pos = 0;
    std::string name = nameAt(code, at, pos);
    if (name.empty()) return xeus::create_inspect_reply(false);
    // The name's last part: what the analysis finds (a local, a top-level fn, a builtin).
    size_t lastDot = name.rfind('.');
    size_t probe = pos + (lastDot == std::string::npos ? 0 : lastDot + 1);
    Analysis a;
    analyse(a, code, probe);
    std::string plain, markdown;
    if (auto hit = lsp::findAt(*a.comp, a.line, a.col)) {
      if (auto e = lsp::docOf(*a.comp, hit->desc, hit->decl)) {
        markdown = lsp::docMarkdown(*e);
        plain = e->signature + (e->text.empty() ? "" : "\n\n" + e->text);
      } else {
        plain = hit->desc;
        markdown = "```tdl\n" + hit->desc + "\n```";
      }
    }
    if (plain.empty()) {
      std::string out, err;
      if (docFor(name, out, err)) plain = out;
    }
    vm::Value v;
    // One of the session's own fns (inside a call being typed, `myf(1, `, the cell does not
    // parse): its signature and the comment above it, from the earlier cells (whose text
    // the analysis holds, with the cell after it or alone).
    if (plain.empty() && valueAt(name, v) && v.tag() == vm::Tag::Closure && v.as<vm::ClosureObj>()->proto->decl) {
      const FnDecl& d = *v.as<vm::ClosureObj>()->proto->decl;
      const std::string sig = fnSignature(d);
      if (auto e = a.comp->loader ? lsp::docOf(*a.comp, sig, d.loc) : std::nullopt) {
        markdown = lsp::docMarkdown(*e);
        plain = e->signature + (e->text.empty() ? "" : "\n\n" + e->text);
      } else {
        plain = sig;
        markdown = "```tdl\n" + sig + "\n```";
      }
    }
    // A value of the session: its type and (the start of) its value, as print shows it.
    if (valueAt(name, v) && v.tag() != vm::Tag::Closure &&
        v.tag() != vm::Tag::Builtin) {
      std::string text = vm::str(v);
      if (text.size() > 2000) text = text.substr(0, 2000) + "...";
      std::string about = fmt::format("type: {}\nvalue: {}", vm::typeText(v), text);
      plain = plain.empty() ? about : plain + "\n\n" + about;
      if (!markdown.empty()) markdown += "\n\n```\n" + about + "\n```";
    }
    if (plain.empty()) return xeus::create_inspect_reply(false);
    nl::json data = {{"text/plain", plain}};
    if (!markdown.empty()) data["text/markdown"] = markdown;
    return xeus::create_inspect_reply(true, data);
  }

  nl::json is_complete_request_impl(const std::string& code) override {
    int open = vm::ReplSession::openBrackets(code);
    if (open > 0) return xeus::create_is_complete_reply("incomplete", std::string(4 * static_cast<size_t>(open), ' '));
    if (open < 0) return xeus::create_is_complete_reply("invalid");
    return xeus::create_is_complete_reply("complete");
  }

  nl::json kernel_info_request_impl() override {
    // TDL's syntax is closest to Rust's among the lexers Jupyter ships (fn, let, braces).
    return xeus::create_info_reply("5.3", "tdl", TDL_VERSION, "tdl", TDL_VERSION, "text/x-tdl", ".tdl", "rust",
                                   "rust", "", fmt::format("TDL {}: a tensor language (eager cells, graph fns)", TDL_VERSION));
  }

  void shutdown_request_impl() override {}

  vm::ReplSession session_;
  vm::DisplayHooks hooks_;
  StreamFn outFn_, errFn_;
  std::map<const void*, std::string> bars_;
  int barCount_ = 0;
  int count_ = 0;
  bool silent_ = false;  // the running execute_request is silent
  std::vector<std::pair<size_t, int>> cells_;  // (session lines before the cell, its number)
};

// SIGINT sets the interrupt flag (an async-signal-safe store). The kernel's own threads (this
// one, running the cells, and xeus's, made after it) block it, so that no ZeroMQ call of
// theirs sees EINTR; it lands on a thread started before (the process's first thread,
// waiting in pthread_join, or a BLAS worker), which restarts what it was waiting in.
extern "C" void onInterrupt(int) { rt::request_interrupt(); }

void catchInterrupts() {
  struct sigaction sa {};
  sa.sa_handler = onInterrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

// ------------------------------------------------------------ kernelspec

std::string dataDir(const JupyterInstallOptions& o, std::string& err) {
  if (!o.prefix.empty()) return o.prefix + "/share/jupyter";
  if (o.user) {
    if (const char* d = std::getenv("JUPYTER_DATA_DIR"); d && *d) return d;
    if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x) return std::string(x) + "/jupyter";
    const char* home = std::getenv("HOME");
    if (!home || !*home) {
      err = "--user needs $HOME (or $JUPYTER_DATA_DIR)";
      return "";
    }
    return std::string(home) + "/.local/share/jupyter";
  }
  return "/usr/local/share/jupyter";  // jupyter's system-wide place (as `jupyter kernelspec install`)
}

}  // namespace

int runJupyterKernel(const std::string& connectionFile) {
  if (connectionFile.empty()) {
    fmt::print(stderr, "tdl jupyter kernel: error: needs -f CONNECTION_FILE (Jupyter starts it so: see "
                       "`tdl jupyter install`)\n");
    return 2;
  }
  std::error_code ec;
  if (!std::filesystem::is_regular_file(connectionFile, ec)) {
    fmt::print(stderr, "tdl jupyter kernel: error: cannot read connection file '{}'\n", connectionFile);
    return 1;
  }
  // The file's fields checked first, by name (xeus's reader throws JSON library errors).
  {
    std::string text, why;
    if (!readFile(connectionFile, text, why)) {
      fmt::print(stderr, "tdl jupyter kernel: error: cannot read connection file '{}': {}\n", connectionFile, why);
      return 1;
    }
    nl::json j = nl::json::parse(text, nullptr, false);
    std::string bad;
    if (j.is_discarded() || !j.is_object()) bad = "it is not a JSON object";
    for (const char* k : {"transport", "ip", "key", "signature_scheme"})
      if (bad.empty() && ((j.contains(k) && !j[k].is_string()) || (!j.contains(k) && std::string(k) != "signature_scheme")))
        bad = fmt::format("\"{}\" must be a string", k);
    for (const char* k : {"shell_port", "iopub_port", "stdin_port", "control_port", "hb_port"})
      if (bad.empty() && (!j.contains(k) || !j[k].is_number_integer() || j[k].get<int64_t>() < 0 || j[k].get<int64_t>() > 65535))
        bad = fmt::format("\"{}\" must be a port number (0 to 65535)", k);
    if (!bad.empty()) {
      fmt::print(stderr, "tdl jupyter kernel: error: bad connection file '{}': {}\n", connectionFile, bad);
      return 1;
    }
  }
  xeus::xconfiguration config;
  try {
    config = xeus::load_configuration(connectionFile);
  } catch (const std::exception& e) {
    fmt::print(stderr, "tdl jupyter kernel: error: bad connection file '{}': {}\n", connectionFile, e.what());
    return 1;
  }
  catchInterrupts();
  auto context = xeus::make_context<zmq::context_t>();
  auto interpreter = std::make_unique<TdlInterpreter>();
  std::unique_ptr<xeus::xkernel> kernel;
  try {  // binds the sockets
    kernel = std::make_unique<xeus::xkernel>(config, xeus::get_user_name(), std::move(context), std::move(interpreter),
                                             xeus::make_xserver_zmq, std::make_unique<History>(), nullptr,
                                             xeus::make_null_debugger, nl::json::object(),
                                             nl::json::error_handler_t::replace);
  } catch (const std::exception& e) {
    fmt::print(stderr, "tdl jupyter kernel: error: cannot serve on {}://{} (ports {}, {}, {}, {}, {}): {}\n",
               config.m_transport, config.m_ip, config.m_shell_port, config.m_iopub_port, config.m_stdin_port,
               config.m_control_port, config.m_hb_port, e.what());
    return 1;
  }
  try {
    kernel->start();
  } catch (const std::exception& e) {
    fmt::print(stderr, "tdl jupyter kernel: error: {}\n", e.what());
    return 1;
  }
  return 0;
}

int installJupyterKernel(const JupyterInstallOptions& o) {
  std::string err;
  std::string base = dataDir(o, err);
  if (base.empty()) {
    fmt::print(stderr, "tdl jupyter install: error: {}\n", err);
    return 1;
  }
  std::error_code ec;
  std::string exe = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  if (ec || exe.empty()) {
    fmt::print(stderr, "tdl jupyter install: error: cannot find the tdl executable's path\n");
    return 1;
  }
  std::filesystem::path dir = std::filesystem::path(base) / "kernels" / o.name;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    fmt::print(stderr, "tdl jupyter install: error: cannot create '{}': {}\n", dir.string(), ec.message());
    return 1;
  }
  nl::json spec = {{"argv", {exe, "jupyter", "kernel", "-f", "{connection_file}"}},
                   {"display_name", "TDL"},
                   {"language", "tdl"},
                   {"interrupt_mode", "signal"},
                   {"metadata", {{"debugger", false}}}};
  try {
    rt::write_file_atomic((dir / "kernel.json").string(), spec.dump(1) + "\n");
    rt::write_file_atomic((dir / "logo-32x32.png").string(), jupyter::logoPng(32));
    rt::write_file_atomic((dir / "logo-64x64.png").string(), jupyter::logoPng(64));
    rt::write_file_atomic((dir / "logo-svg.svg").string(), jupyter::logoSvg());
  } catch (const std::exception& e) {
    fmt::print(stderr, "tdl jupyter install: error: {}\n", e.what());
    return 1;
  }
  fmt::print("installed kernelspec {} in {}\n", o.name, dir.string());
  return 0;
}

}  // namespace tdl
