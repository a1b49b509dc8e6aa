#include "frontend/Diagnostics.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

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
static std::string snippet(const SourceFile& f, const Loc& loc0) {
  std::string_view line = f.lineText(loc0.line);
  if (line.empty() && loc0.line > f.lineCount()) return {};
  Loc loc = loc0;
  // Very long lines are shown as a window around the caret.
  constexpr uint32_t kWindow = 120;
  std::string prefix;
  if (line.size() > 2 * kWindow && loc.col > kWindow / 2) {
    uint32_t start = loc.col - kWindow / 2;  // 1-based column of the first shown byte
    line = line.substr(start - 1, kWindow);
    prefix = "...";
    auto shift = [&](uint32_t c) { return c >= start ? c - start + 1 + 3 : 1; };
    loc.col = shift(loc.col);
    loc.bcol = shift(loc.bcol);
    loc.ecol = std::min<uint32_t>(shift(loc.ecol), static_cast<uint32_t>(line.size()) + 4);
  } else if (line.size() > 2 * kWindow) {
    line = line.substr(0, 2 * kWindow);
    loc.ecol = std::min<uint32_t>(loc.ecol, 2 * kWindow + 1);
  }
  std::string shown = prefix + std::string(line);
  // Keep the terminal safe: control bytes and broken UTF-8 print as '?'.
  bool badUtf8 = findInvalidUtf8(shown) != std::string::npos;
  for (char& ch : shown) {
    auto u = static_cast<unsigned char>(ch);
    if ((u < 0x20 && ch != '\t') || u == 0x7F || (badUtf8 && u >= 0x80)) ch = '?';
  }
  std::string out = shown + '\n';
  // Columns count code points; under each goes as much as a terminal shows it: a tab, two
  // cells for a wide (CJK, emoji) one, none for a combining mark.
  const std::u32string cps = decodeUtf8(shown);
  auto width = [&](uint32_t c) -> int {
    if (c - 1 >= cps.size()) return 1;
    char32_t x = cps[c - 1];
    if ((x >= 0x0300 && x <= 0x036F) || (x >= 0x200B && x <= 0x200F) || (x >= 0xFE00 && x <= 0xFE0F)) return 0;
    bool wide = (x >= 0x1100 && x <= 0x115F) || (x >= 0x2E80 && x <= 0x303E) || (x >= 0x3041 && x <= 0x33FF) ||
                (x >= 0x3400 && x <= 0x4DBF) || (x >= 0x4E00 && x <= 0x9FFF) || (x >= 0xA000 && x <= 0xA4CF) ||
                (x >= 0xAC00 && x <= 0xD7A3) || (x >= 0xF900 && x <= 0xFAFF) || (x >= 0xFE30 && x <= 0xFE4F) ||
                (x >= 0xFF00 && x <= 0xFF60) || (x >= 0xFFE0 && x <= 0xFFE6) || (x >= 0x1F300 && x <= 0x1F64F) ||
                (x >= 0x1F900 && x <= 0x1F9FF) || (x >= 0x20000 && x <= 0x3FFFD);
    return wide ? 2 : 1;
  };
  uint32_t b = loc.bline == loc.line ? loc.bcol : 1;
  uint32_t e = loc.eline == loc.line ? loc.ecol : static_cast<uint32_t>(cps.size()) + 1;
  if (loc.bline > loc.line || loc.bline == 0) b = loc.col;
  if (e <= loc.col) e = loc.col + 1;
  if (b > loc.col) b = loc.col;
  for (uint32_t c = 1; c < e; ++c) {
    int w = width(c);
    if (c == loc.col) out += std::string(static_cast<size_t>(std::max(w, 1)), '^');
    else if (c >= b) out += std::string(static_cast<size_t>(w), '~');
    else if (c - 1 < cps.size() && cps[c - 1] == U'\t') out += '\t';
    else out += std::string(static_cast<size_t>(w), ' ');
  }
  out += '\n';
  return out;
}

// Text that came from data (a CSV cell, a string, a file name) must not drive the terminal:
// control characters other than newline and tab, DEL, and the C1 controls (U+0080..U+009F)
// are shown as \xNN / \u00NN escapes.
static std::string escapeControls(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    auto u = static_cast<unsigned char>(s[i]);
    if ((u < 0x20 && u != '\n' && u != '\t') || u == 0x7F) {
      out += fmt::format("\\x{:02x}", u);
    } else if (u == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
               static_cast<unsigned char>(s[i + 1]) <= 0x9F) {
      out += fmt::format("\\u00{:02x}", static_cast<unsigned char>(s[i + 1]));
      ++i;
    } else {
      out += static_cast<char>(u);
    }
  }
  return out;
}

const char* severityName(Severity s) {
  switch (s) {
    case Severity::Error: return "error";
    case Severity::Warning: return "warning";
    case Severity::Note: return "note";
  }
  return "error";
}

std::string DiagEngine::render(const Diagnostic& d0, bool color) const {
  Diagnostic d = d0;
  d.message = escapeControls(d.message);
  for (auto& t : d.trace) t = escapeControls(t);
  const char* kind = severityName(d.severity);
  std::string head = escapeControls(locString(d.loc));
  std::string out;
  if (color) {
    const char* c = d.severity == Severity::Error ? "\033[1;31m" : d.severity == Severity::Warning ? "\033[1;35m" : "\033[1;36m";
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
  nlohmann::json j = {{"level", severityName(d.severity)},
                      {"code", nullptr},
                      {"message", d.message},
                      // (No span for a diagnostic about a whole file, as rustc's.)
                      {"spans", d.loc.line ? nlohmann::json::array({span}) : nlohmann::json::array()},
                      {"children", children},
                      {"rendered", render(d)}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void DiagEngine::report(Diagnostic d) {
  std::string key = fmt::format("{}:{}:{}:{}:{}:{}", static_cast<int>(d.severity), d.loc.file, d.loc.line, d.loc.col,
                                d.message, fmt::join(d.trace, "|"));
  if (!seen_.insert(std::move(key)).second) return;
  if (d.severity == Severity::Error) ++errors_;
  if (print_) {
    std::string text = json_ ? renderJson(d) + "\n" : render(d, color_);
    std::fwrite(text.data(), 1, text.size(), out_);
    std::fflush(out_);
  }
  all_.push_back(std::move(d));
}

// The edit distance (insertions, deletions, substitutions, adjacent swaps) of a and b.
size_t editDistance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1])});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

// " (did you mean 'x'?)" for the candidate closest to `name` (within a third of its length,
// at least one edit; names of 3 or more characters), or "".
std::string didYouMean(const std::string& name, const std::vector<std::string>& candidates) {
  if (name.size() < 3) return "";  // x for y is noise
  size_t best = std::max<size_t>(1, name.size() / 3) + 1;
  std::string pick;
  for (const std::string& c : candidates) {
    if (c == name || c.empty() || c[0] == '_') continue;
    size_t d = editDistance(name, c);
    if (d < best || (d == best && !pick.empty() && c < pick)) {
      if (d < best) best = d;
      pick = c;
    }
  }
  return pick.empty() ? "" : fmt::format(" (did you mean '{}'?)", pick);
}

}  // namespace tdl
