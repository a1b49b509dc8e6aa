// CSV reading: RFC 4180 records (quoted fields may hold commas, quotes as "" and line
// breaks), LF or CRLF, an optional UTF-8 BOM, gzip input. Numbers are parsed with
// std::from_chars (locale-independent).
#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <limits>
#include <cstring>
#include <vector>

#include "Error.h"
#include "FileIo.h"
#include "Io.h"

namespace tdl::rt {

namespace {

std::string_view trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t' || v.front() == '\r')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t' || v.back() == '\r')) v.remove_suffix(1);
  return v;
}

template <class T>
bool parse_value(std::string_view v, T& out) {
  if constexpr (std::is_same_v<T, bool>) {
    if (v == "true" || v == "True" || v == "TRUE" || v == "1") return out = true, true;
    if (v == "false" || v == "False" || v == "FALSE" || v == "0") return out = false, true;
    return false;
  } else {
    if (!v.empty() && v.front() == '+') v.remove_prefix(1);
    if (v.empty()) return false;
    const char* end = v.data() + v.size();
    auto [p, ec] = std::from_chars(v.data(), end, out);
    if constexpr (std::is_floating_point_v<T>) {
      if (ec == std::errc::result_out_of_range && p == end) {
        // Beyond the dtype's range: infinity; below it: zero or a subnormal (strtod's, as
        // NumPy's loadtxt reads 1e400 and 1e-50).
        long double wide = 0;
        auto [q, e2] = std::from_chars(v.data(), end, wide);
        const bool neg = v.front() == '-';
        if (e2 == std::errc() && q == end) {
          out = std::fabs(wide) > static_cast<long double>(std::numeric_limits<T>::max())
                    ? (neg ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity())
                    : static_cast<T>(wide);
        } else {
          size_t e = v.find_last_of("eE");
          const bool tiny = e != std::string_view::npos && e + 1 < v.size() && v[e + 1] == '-';
          out = tiny ? (neg ? -T(0) : T(0))
                     : (neg ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity());
        }
        return true;
      }
    }
    return ec == std::errc() && p == end;
  }
}

// A cell's text as it may appear in a message: at most 40 bytes, control characters
// escaped (a cell must not move a terminal's cursor or change its colours).
std::string shown(std::string_view v) {
  std::string out;
  for (unsigned char c : v.substr(0, 40)) {
    if (c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02x}", c);
    else out += static_cast<char>(c);
  }
  return out;
}

// One pass over the text: each record's fields are split (RFC 4180) into a reused buffer and
// parsed into the values at once, so memory is the text plus the values (no per-field
// objects). Blank lines are skipped; the header record, when asked for, is skipped too (the
// first line, whatever it holds). A `#` outside quotes starts a comment to the end of its
// line, and a line that is only a comment is skipped, as NumPy's loadtxt reads them.
template <class T>
Tensor parse_csv(const std::string& s, const std::string& path, DType dtype, bool header) {
  using Store = std::conditional_t<std::is_same_v<T, bool>, uint8_t, T>;  // no vector<bool>
  std::vector<Store> values;
  std::vector<std::string_view> fields;     // the current record (views into s or `quoted`s)
  std::vector<std::string> quotedFields;    // storage of the record's quoted fields
  std::vector<int64_t> fieldLines;
  size_t i = 0;
  if (s.size() >= 3 && std::memcmp(s.data(), "\xEF\xBB\xBF", 3) == 0) i = 3;
  int64_t line = 1, cols = -1, rows = 0, headerCols = 0;
  bool skipHeader = header;
  while (i < s.size()) {
    if (s[i] == '\n') {
      ++i;
      ++line;
      continue;
    }
    if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') {
      i += 2;
      ++line;
      continue;
    }
    if (!skipHeader) {
      size_t j = i;
      while (j < s.size() && (s[j] == ' ' || s[j] == '\t')) ++j;
      if (j < s.size() && s[j] == '#') {  // a comment line
        while (j < s.size() && s[j] != '\n') ++j;
        i = j;
        continue;
      }
    }
    fields.clear();
    fieldLines.clear();
    size_t nQuoted = 0;
    auto skipComment = [&] {  // a `#` after a field: to the end of the line (its CR LF stays)
      if (i < s.size() && s[i] == '#')
        while (i < s.size() && s[i] != '\n' && !(s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n')) ++i;
    };
    for (;;) {  // one field per iteration
      fieldLines.push_back(line);
      if (i < s.size() && s[i] == '"') {
        const int64_t open_line = line;
        if (nQuoted == quotedFields.size()) quotedFields.emplace_back();
        std::string& q = quotedFields[nQuoted++];
        q.clear();
        ++i;
        for (;;) {
          if (i >= s.size()) throw Error(fmt::format("'{}': line {}: unterminated quoted field", path, open_line));
          if (s[i] == '"') {
            if (i + 1 < s.size() && s[i + 1] == '"') {
              q.push_back('"');
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          if (s[i] == '\n') ++line;
          q.push_back(s[i++]);
        }
        // Only spaces may follow the closing quote before the separator.
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
        skipComment();
        if (i < s.size() && s[i] != ',' && s[i] != '\n' && s[i] != '\r')
          throw Error(fmt::format("'{}': line {}, column {}: unexpected text after a quoted field", path, line,
                                  fields.size() + 1));
        fields.push_back(std::string_view());  // filled below, once quotedFields stops growing
      } else {
        size_t b = i;
        while (i < s.size() && s[i] != ',' && s[i] != '\n' && s[i] != '#' &&
               !(s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n'))
          ++i;
        fields.push_back(std::string_view(s.data() + b, i - b));
        skipComment();
        if (i < s.size() && s[i] == '\r' && i + 1 == s.size()) ++i;  // lone CR at the very end
      }
      if (i < s.size() && s[i] == ',') {
        ++i;
        continue;
      }
      break;
    }
    // Point the quoted fields at their storage (in order of appearance).
    for (size_t f = 0, q = 0; f < fields.size() && q < nQuoted; ++f)
      if (fields[f].data() == nullptr) fields[f] = quotedFields[q++];
    if (i < s.size() && s[i] == '\r') ++i;
    if (i < s.size() && s[i] == '\n') {
      ++i;
      ++line;
    }
    const int64_t got = static_cast<int64_t>(fields.size());
    if (skipHeader) {
      // The header line is skipped, not used for the column count (as NumPy's
      // loadtxt(skiprows=1)): some files put other facts there (sklearn's wine_data.csv
      // starts with "178,13,class_0,class_1,class_2"). With no data rows, it still says
      // how many columns there are.
      skipHeader = false;
      headerCols = got;
      continue;
    }
    if (cols < 0) cols = got;
    if (got != cols) {
      if (got < cols)
        throw Error(fmt::format("'{}': line {}: ragged row: {} fields, expected {} (column {} is missing)", path,
                                fieldLines.front(), got, cols, got + 1));
      throw Error(fmt::format("'{}': line {}: ragged row: {} fields, expected {} (unexpected column {})", path,
                              fieldLines[static_cast<size_t>(cols)], got, cols, cols + 1));
    }
    for (int64_t c = 0; c < cols; ++c) {
      std::string_view v = trim(fields[static_cast<size_t>(c)]);
      T x{};
      if (!parse_value<T>(v, x))
        throw Error(fmt::format("'{}': line {}, column {}: cannot parse '{}' as {}", path,
                                fieldLines[static_cast<size_t>(c)], c + 1, shown(v), dtype_name(dtype)));
      values.push_back(static_cast<Store>(x));
    }
    ++rows;
  }
  if (cols < 0) cols = header ? headerCols : 0;
  Tensor t = Tensor::empty(dtype, {rows, cols});
  T* out = t.mutable_data<T>();
  for (size_t k = 0; k < values.size(); ++k) out[k] = static_cast<T>(values[k]);
  return t;
}

}  // namespace

Tensor load_csv(const std::string& path, DType dtype, bool header) {
  detail::InFile in(path);
  std::string text = in.read_all(true);
  Tensor out;
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    out = parse_csv<T>(text, path, dtype, header);
  });
  return out;
}

}  // namespace tdl::rt
