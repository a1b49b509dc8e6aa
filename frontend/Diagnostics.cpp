#include "frontend/Diagnostics.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace tdl {

DiagEngine::DiagEngine(const SourceManager& sm, FILE* out) : sm_(sm), out_(out) {}

std::string DiagEngine::locString(const Loc& loc) const {
  if (loc.file >= sm_.size()) return "<unknown>";
  const auto& f = sm_.file(loc.file);
  if (!loc.valid()) return f.path;
  return fmt::format("{}:{}:{}", f.path, loc.line, loc.col);
}

// The source line followed by a marker line: `~` under the span, `^` at the caret.
static std::string snippet(const SourceFile& f, const Loc& loc) {
  std::string_view line = f.lineText(loc.line);
  if (line.empty() && loc.line > f.lineCount()) return {};
  std::string out(line);
  out += '\n';
  uint32_t b = loc.bline == loc.line ? loc.bcol : 1;
  uint32_t e = loc.eline == loc.line ? loc.ecol : static_cast<uint32_t>(line.size()) + 1;
  if (loc.bline > loc.line || loc.bline == 0) b = loc.col;
  if (e <= loc.col) e = loc.col + 1;
  if (b > loc.col) b = loc.col;
  for (uint32_t c = 1; c < e; ++c) {
    char src = c - 1 < line.size() ? line[c - 1] : ' ';
    if (c == loc.col) out += '^';
    else if (c >= b) out += '~';
    else out += (src == '\t' ? '\t' : ' ');
  }
  out += '\n';
  return out;
}

std::string DiagEngine::render(const Diagnostic& d, bool color) const {
  const char* kind = d.severity == Severity::Error ? "error" : "warning";
  std::string head = locString(d.loc);
  std::string out;
  if (color) {
    const char* c = d.severity == Severity::Error ? "\033[1;31m" : "\033[1;35m";
    out = fmt::format("\033[1m{}:\033[0m {}{}:\033[0m \033[1m{}\033[0m\n", head, c, kind, d.message);
  } else {
    out = fmt::format("{}: {}: {}\n", head, kind, d.message);
  }
  if (d.loc.valid() && d.loc.file < sm_.size()) out += snippet(sm_.file(d.loc.file), d.loc);
  for (const auto& t : d.trace) out += "  " + t + "\n";
  return out;
}

std::string DiagEngine::renderJson(const Diagnostic& d) const {
  nlohmann::json span = {
      {"file_name", d.loc.file < sm_.size() ? sm_.file(d.loc.file).path : ""},
      {"line_start", d.loc.bline ? d.loc.bline : d.loc.line},
      {"column_start", d.loc.bcol ? d.loc.bcol : d.loc.col},
      {"line_end", d.loc.eline ? d.loc.eline : d.loc.line},
      {"column_end", d.loc.ecol ? d.loc.ecol : d.loc.col + 1},
      {"caret_line", d.loc.line},
      {"caret_column", d.loc.col},
      {"is_primary", true},
      {"label", nullptr}};
  nlohmann::json children = nlohmann::json::array();
  for (const auto& t : d.trace)
    children.push_back({{"level", "note"}, {"message", t}, {"spans", nlohmann::json::array()}});
  nlohmann::json j = {{"level", d.severity == Severity::Error ? "error" : "warning"},
                      {"code", nullptr},
                      {"message", d.message},
                      {"spans", nlohmann::json::array({span})},
                      {"children", children},
                      {"rendered", render(d)}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void DiagEngine::report(Diagnostic d) {
  if (d.severity == Severity::Error) ++errors_;
  if (print_) {
    std::string text = json_ ? renderJson(d) + "\n" : render(d, color_);
    std::fwrite(text.data(), 1, text.size(), out_);
    std::fflush(out_);
  }
  all_.push_back(std::move(d));
}

}  // namespace tdl
