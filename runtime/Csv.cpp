// CSV reading: RFC 4180 records (quoted fields may hold commas, quotes as "" and line
// breaks), LF or CRLF, an optional UTF-8 BOM, gzip input. Numbers are parsed with
// std::from_chars (locale-independent).
#include <fmt/format.h>

#include <charconv>
#include <cstring>
#include <vector>

#include "Error.h"
#include "FileIo.h"
#include "Io.h"

namespace tdl::rt {

namespace {

struct Field {
  std::string text;
  int64_t line;
};

// Splits the text into records of fields; blank lines are skipped.
std::vector<std::vector<Field>> split_records(const std::string& s, const std::string& path) {
  std::vector<std::vector<Field>> records;
  size_t i = 0;
  if (s.size() >= 3 && std::memcmp(s.data(), "\xEF\xBB\xBF", 3) == 0) i = 3;
  int64_t line = 1;
  while (i < s.size()) {
    // A blank line (or the end after a final newline) is no record.
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
    std::vector<Field> rec;
    const int64_t rec_line = line;
    for (;;) {  // one field per iteration
      Field f{{}, line};
      if (i < s.size() && s[i] == '"') {
        const int64_t open_line = line;
        ++i;
        for (;;) {
          if (i >= s.size())
            throw Error(fmt::format("'{}': line {}: unterminated quoted field", path, open_line));
          if (s[i] == '"') {
            if (i + 1 < s.size() && s[i + 1] == '"') {
              f.text.push_back('"');
              i += 2;
              continue;
            }
            ++i;
            break;
          }
          if (s[i] == '\n') ++line;
          f.text.push_back(s[i++]);
        }
        // Only spaces may follow the closing quote before the separator.
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
        if (i < s.size() && s[i] != ',' && s[i] != '\n' && s[i] != '\r')
          throw Error(fmt::format("'{}': line {}, column {}: unexpected text after a quoted field", path, line,
                                  rec.size() + 1));
      } else {
        while (i < s.size() && s[i] != ',' && s[i] != '\n' && !(s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n'))
          f.text.push_back(s[i++]);
        if (i < s.size() && s[i] == '\r' && i + 1 == s.size()) ++i;  // lone CR at the very end
      }
      rec.push_back(std::move(f));
      if (i < s.size() && s[i] == ',') {
        ++i;
        continue;
      }
      break;
    }
    (void)rec_line;
    records.push_back(std::move(rec));
    if (i < s.size() && s[i] == '\r') ++i;
    if (i < s.size() && s[i] == '\n') {
      ++i;
      ++line;
    }
  }
  return records;
}

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
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    return ec == std::errc() && p == v.data() + v.size();
  }
}

}  // namespace

Tensor load_csv(const std::string& path, DType dtype, bool header) {
  detail::InFile in(path);
  std::string text = in.read_all(true);
  std::vector<std::vector<Field>> records = split_records(text, path);
  size_t first = header && !records.empty() ? 1 : 0;
  // The header line is skipped, not used for the column count (as NumPy's
  // loadtxt(skiprows=1)): some files put other facts there (sklearn's
  // wine_data.csv starts with "178,13,class_0,class_1,class_2").
  // With no data rows, the header still says how many columns there are.
  const size_t shapeRow = records.size() > first ? first : 0;
  int64_t cols = records.empty() ? 0 : static_cast<int64_t>(records[shapeRow].size());
  const int64_t rows = static_cast<int64_t>(records.size() - first);
  for (size_t r = first; r < records.size(); ++r) {
    int64_t got = static_cast<int64_t>(records[r].size());
    if (got != cols) {
      int64_t line = records[r].empty() ? 0 : records[r].front().line;
      if (got < cols)
        throw Error(fmt::format("'{}': line {}: ragged row: {} fields, expected {} (column {} is missing)", path, line,
                                got, cols, got + 1));
      throw Error(fmt::format("'{}': line {}: ragged row: {} fields, expected {} (unexpected column {})", path,
                              records[r][cols].line, got, cols, cols + 1));
    }
  }
  Tensor t = Tensor::empty(dtype, {rows, cols});
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* p = t.mutable_data<T>();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        const Field& f = records[first + r][c];
        std::string_view v = trim(f.text);
        if (!parse_value<T>(v, p[r * cols + c]))
          throw Error(fmt::format("'{}': line {}, column {}: cannot parse '{}' as {}", path, f.line, c + 1,
                                  std::string(v.substr(0, 40)), dtype_name(dtype)));
      }
  });
  return t;
}

}  // namespace tdl::rt
