#include "Print.h"

#include <fmt/format.h>

#include "Error.h"

#include <cctype>
#include <cstdio>
#include <cmath>
#include <cstring>
#include <mutex>
#include <optional>

namespace tdl::rt {

namespace {

// With a print precision p: at most p digits after the point, trailing zeros dropped (one
// kept), scientific below 1e-4 and from 1e16 on, as NumPy's default float mode.
std::string format_precision(double v, int p) {
  double a = std::fabs(v);
  auto trim = [](std::string m) {
    if (m.find('.') == std::string::npos) return m + ".0";
    while (m.back() == '0') m.pop_back();
    if (m.back() == '.') m += '0';
    return m;
  };
  if (a != 0 && (a < 1e-4 || a >= 1e16)) {
    std::string s = fmt::format("{:.{}e}", v, p);
    size_t e = s.find('e');
    std::string m = s.substr(0, e);
    if (m.find('.') != std::string::npos) {
      while (m.back() == '0') m.pop_back();
      if (m.back() == '.') m.pop_back();
    }
    return m + s.substr(e);
  }
  return trim(fmt::format("{:.{}f}", v, p));
}

template <class F>
std::string format_shortest(F v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (int p = print_options().precision; p >= 0) return format_precision(static_cast<double>(v), p);
  std::string s = fmt::format("{}", v);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

void append_element(std::string& out, const Tensor& t, int64_t flat) {
  switch (t.dtype()) {
    case DType::Bool: out += t.data<bool>()[flat] ? "true" : "false"; return;
    case DType::I32: fmt::format_to(std::back_inserter(out), "{}", t.data<int32_t>()[flat]); return;
    case DType::I64: fmt::format_to(std::back_inserter(out), "{}", t.data<int64_t>()[flat]); return;
    case DType::I8: fmt::format_to(std::back_inserter(out), "{}", static_cast<int>(t.data<int8_t>()[flat])); return;
    case DType::F32: out += format_shortest(t.data<float>()[flat]); return;
    case DType::F64: out += format_shortest(t.data<double>()[flat]); return;
  }
}

// Element `flat` as a scalar tensor of t's dtype.
Tensor element_tensor(const Tensor& t, int64_t flat) {
  switch (t.dtype()) {
    case DType::Bool: return Tensor::scalar(t.data<bool>()[flat]);
    case DType::I32: return Tensor::scalar(t.data<int32_t>()[flat]);
    case DType::I64: return Tensor::scalar(t.data<int64_t>()[flat]);
    case DType::F32: return Tensor::scalar(t.data<float>()[flat]);
    case DType::F64: return Tensor::scalar(t.data<double>()[flat]);
    case DType::I8: return Tensor::scalar(static_cast<int32_t>(t.data<int8_t>()[flat]));
  }
  return Tensor::scalar(false);
}

struct Printer {
  const Tensor& t;
  std::vector<int64_t> strides;
  bool summarize;
  std::string out;
  const std::string* spec = nullptr;  // format_with_spec: each element formatted with it

  // Indices of axis entries to print; -1 marks the `...` gap.
  std::vector<int64_t> entries(int64_t n) const {
    std::vector<int64_t> v;
    if (summarize && n > 2 * kPrintEdgeItems) {
      for (int64_t i = 0; i < kPrintEdgeItems; ++i) v.push_back(i);
      v.push_back(-1);
      for (int64_t i = n - kPrintEdgeItems; i < n; ++i) v.push_back(i);
    } else {
      for (int64_t i = 0; i < n; ++i) v.push_back(i);
    }
    return v;
  }

  void print(size_t axis, int64_t offset) {
    out += '[';
    bool last_axis = axis + 1 == t.shape().size();
    bool first = true;
    const int64_t width = print_options().linewidth;
    for (int64_t i : entries(t.shape()[axis])) {
      if (last_axis) {
        std::string item;
        if (i < 0) item = "...";
        else if (spec) item = format_with_spec(element_tensor(t, offset + i), *spec);
        else append_element(item, t, offset + i);
        if (!first) {
          // linewidth: a row wraps before an item (and its ',' or ']') that would pass it.
          size_t nl = out.rfind('\n');
          int64_t column = static_cast<int64_t>(nl == std::string::npos ? out.size() : out.size() - nl - 1);
          if (width > 0 && column + 2 + static_cast<int64_t>(item.size()) + 1 > width) {
            out += ",\n";
            out.append(axis + 1, ' ');
          } else {
            out += ", ";
          }
        }
        out += item;
      } else {
        if (!first) {
          out += ",\n";
          out.append(axis + 1, ' ');
        }
        if (i < 0) out += "...";
        else print(axis + 1, offset + i * strides[axis]);
      }
      first = false;
    }
    out += ']';
  }
};

}  // namespace

namespace {
std::mutex g_console;
std::string g_status;  // the status line on stderr ("" when none)
}  // namespace

void set_status_line(const std::string& line) {
  std::lock_guard<std::mutex> lock(g_console);
  g_status = line;
}

namespace {
int g_quiet = 0;  // QuietStdout's alive (under g_console)
}

QuietStdout::QuietStdout() {
  std::lock_guard<std::mutex> lock(g_console);
  ++g_quiet;
}

QuietStdout::~QuietStdout() {
  std::lock_guard<std::mutex> lock(g_console);
  --g_quiet;
}

void write_output(const std::string& text, FILE* out) {
  std::lock_guard<std::mutex> lock(g_console);
  if (g_quiet > 0 && out == stdout) return;
  if (g_status.empty()) {
    std::fwrite(text.data(), 1, text.size(), out);
    return;
  }
  std::fputs("\r\033[K", stderr);
  std::fflush(stderr);
  std::fwrite(text.data(), 1, text.size(), out);
  std::fflush(out);
  std::string again = "\r" + g_status + "\033[K";
  std::fwrite(again.data(), 1, again.size(), stderr);
  std::fflush(stderr);
}

PrintOptions& print_options() {
  static PrintOptions options;
  return options;
}

std::string format_float(double v, DType dtype) {
  return dtype == DType::F32 ? format_shortest(static_cast<float>(v)) : format_shortest(v);
}

std::string format_element(const Tensor& t, int64_t flat) {
  std::string s;
  append_element(s, t, flat);
  return s;
}

namespace {
std::string format_tensor_with(const Tensor& t, const std::string* spec) {
  // A zero-size tensor prints one `[]` per index before its first zero dim: summarized
  // like a large tensor when those are many (zeros([2**40, 0]) prints in O(1)).
  const int64_t threshold = print_options().threshold;
  bool many = t.numel() > threshold;
  if (t.numel() == 0) {
    const uint64_t limit = static_cast<uint64_t>(threshold);
    uint64_t lists = 1;  // saturates just past the limit (both factors stay within it)
    for (int64_t d : t.shape()) {
      if (d == 0) break;
      uint64_t ud = static_cast<uint64_t>(d);
      lists = ud > limit || lists * ud > limit ? limit + 1 : lists * ud;
    }
    many = lists > limit;
  }
  Printer p{t, strides_of(t.shape()), many, {}, spec};
  p.print(0, 0);
  return std::move(p.out);
}
}  // namespace

std::string format_tensor(const Tensor& t) {
  if (t.rank() == 0) return format_element(t, 0);
  return format_tensor_with(t, nullptr);
}

namespace {

// A Python format spec, [[fill]align][sign][z][#][0][width][grouping][.precision][type],
// parsed once (Python's format-spec mini-language; fmt lacks `=`, grouping, `z` and the
// type-less float rule, so TDL lays numbers out itself and asks fmt only for digits).
struct PySpec {
  std::string fill = " ";  // one character (UTF-8)
  bool fillGiven = false;
  char align = '\0';  // < > ^ =, or none
  char sign = '-';    // + - or space
  bool z = false, alt = false, zero = false;
  size_t width = 0;
  char group = '\0';  // , or _
  int prec = -1;
  char type = '\0';  // b c d e E f F g G n o s x X %, or none
};

[[noreturn]] void bad_spec(const std::string& spec, const std::string& why) {
  throw Error(fmt::format("invalid format spec '{}': {}", spec, why));
}

PySpec parse_spec(const std::string& s) {
  PySpec r;
  auto isAlign = [](char c) { return c == '<' || c == '>' || c == '^' || c == '='; };
  size_t p = 0;
  size_t first = s.empty() ? 0 : 1;  // the first character's bytes (a fill may be any character)
  while (first < s.size() && (static_cast<unsigned char>(s[first]) & 0xC0) == 0x80) ++first;
  if (first < s.size() && isAlign(s[first])) {
    r.fill = s.substr(0, first), r.fillGiven = true, r.align = s[first], p = first + 1;
  } else if (!s.empty() && isAlign(s[0])) {
    r.align = s[0], p = 1;
  }
  if (p < s.size() && std::strchr("+- ", s[p])) r.sign = s[p++];
  if (p < s.size() && s[p] == 'z') r.z = true, ++p;
  if (p < s.size() && s[p] == '#') r.alt = true, ++p;
  if (p < s.size() && s[p] == '0') r.zero = true, ++p;
  size_t w0 = p;
  while (p < s.size() && std::isdigit(static_cast<unsigned char>(s[p]))) ++p;
  if (p - w0 > 9) bad_spec(s, "the width is too large");
  if (p > w0) r.width = static_cast<size_t>(std::stoul(s.substr(w0, p - w0)));
  if (p < s.size() && (s[p] == ',' || s[p] == '_')) {
    r.group = s[p++];
    if (p < s.size() && (s[p] == ',' || s[p] == '_')) bad_spec(s, "two grouping options");
  }
  if (p < s.size() && s[p] == '.') {
    size_t q0 = ++p;
    while (p < s.size() && std::isdigit(static_cast<unsigned char>(s[p]))) ++p;
    if (p == q0) bad_spec(s, "a precision needs digits after the '.'");
    if (p - q0 > 4) bad_spec(s, "the precision is too large");
    r.prec = std::stoi(s.substr(q0, p - q0));
  }
  if (p < s.size() && std::strchr("bcdeEfFgGnosxX%", s[p])) r.type = s[p++];
  if (p != s.size()) bad_spec(s, p + 1 == s.size() ? "invalid type specifier" : fmt::format("unexpected '{}'", s.substr(p)));
  return r;
}

// The digits of `body` grouped by `sep` every `every` from its integer part's end: the first
// run of digits (hex digits when hex) after any sign or 0x prefix.
std::string group_digits(const std::string& body, char sep, int every, bool hex, size_t minDigits) {
  auto digit = [&](char ch) {
    return hex ? std::isxdigit(static_cast<unsigned char>(ch)) != 0 : std::isdigit(static_cast<unsigned char>(ch)) != 0;
  };
  size_t b = 0;
  while (b < body.size() && !digit(body[b])) ++b;
  if (b + 1 < body.size() && body[b] == '0' && std::strchr("bBoOxX", body[b + 1])) b += 2;
  size_t e = b;
  while (e < body.size() && digit(body[e])) ++e;
  std::string run = body.substr(b, e - b);
  auto group = [&](const std::string& r) {
    std::string g;
    for (size_t i = 0; i < r.size(); ++i) {
      if (i > 0 && (r.size() - i) % static_cast<size_t>(every) == 0) g += sep;
      g += r[i];
    }
    return g;
  };
  std::string grouped = group(run);
  // Zero padding is grouped too, and never starts with a separator (Python's rule).
  while (b + grouped.size() + (body.size() - e) < minDigits || (!grouped.empty() && grouped[0] == sep))
    grouped = group(run = "0" + run);
  return body.substr(0, b) + grouped + body.substr(e);
}

// A float without a type letter (Python's None type): `shortest` (TDL's text of its dtype)
// without a precision; with one, like 'g' at that many significant digits except that fixed
// notation keeps a digit after the point and scientific starts at exponent precision - 1
// ("{:.3}" of 3.14159 is 3.14, of 100.0 is 1e+02, of 3.0 is 3.0). |x|, no sign.
std::string untyped_float(double a, const std::string& shortest, int prec, bool alt) {
  // '#': the point always shown, and with a precision the trailing zeros kept (Python's).
  auto point = [&](std::string m) {
    if (alt && m.find('.') == std::string::npos) m += '.';
    return m;
  };
  if (prec < 0) {
    std::string t = !shortest.empty() && shortest[0] == '-' ? shortest.substr(1) : shortest;
    size_t ep = t.find('e');
    return ep == std::string::npos ? point(t) : point(t.substr(0, ep)) + t.substr(ep);
  }
  int digits = std::max(prec, 1);
  std::string e = fmt::format("{:.{}e}", a, digits - 1);  // the exponent after rounding
  int exp = std::stoi(e.substr(e.find('e') + 1));
  if (exp >= -4 && exp < digits - 1) {
    std::string body = fmt::format("{:.{}f}", a, digits - 1 - exp);
    if (alt) return point(body);
    if (body.find('.') != std::string::npos) {
      while (body.back() == '0') body.pop_back();
      if (body.back() == '.') body += '0';
    } else {
      body += ".0";
    }
    return body;
  }
  size_t ep = e.find('e');
  std::string mant = e.substr(0, ep);
  if (alt) return point(mant) + e.substr(ep);
  if (mant.find('.') != std::string::npos) {
    while (mant.back() == '0') mant.pop_back();
    if (mant.back() == '.') mant.pop_back();
  }
  return mant + e.substr(ep);
}

// One number under a parsed spec: its sign, its digits (grouped), then fill and alignment.
std::string format_number(const Tensor& t, const PySpec& s, const std::string& spec) {
  const bool isFloat = t.dtype() == DType::F32 || t.dtype() == DType::F64;
  const bool floatType = s.type && std::strchr("eEfFgG%", s.type);
  if (isFloat && s.type && !floatType && s.type != 'n')
    throw Error(fmt::format("format spec '{}' needs an integer, got a float", spec));
  if (s.type == 's') throw Error(fmt::format("format spec '{}' needs a string, got a number", spec));
  bool neg = false;
  std::string body;  // the digits, without sign or padding
  if (t.dtype() == DType::Bool) {  // its text, as a string is laid out (left by default)
    if ((s.type && s.type != 's') || s.align == '=' || s.group || s.sign != '-' || s.z || s.alt)
      throw Error(fmt::format("format spec '{}' does not apply to a bool", spec));
    body = format_element(t, 0);
    if (s.prec >= 0) body = body.substr(0, static_cast<size_t>(s.prec));
  } else if (isFloat || floatType) {
    double x = t.scalar_as_double();
    neg = std::signbit(x) && !std::isnan(x);
    const double a = std::fabs(x);
    const int prec = s.prec < 0 ? 6 : s.prec;
    const std::string alt = s.alt ? "#" : "";
    if (!std::isfinite(a)) {
      body = std::isnan(a) ? "nan" : "inf";
      if (s.type && std::isupper(static_cast<unsigned char>(s.type))) body = std::isnan(a) ? "NAN" : "INF";
      if (s.type == '%') body += '%';
    } else if (s.type == '%') {
      body = fmt::format(fmt::runtime("{:" + alt + ".{}f}%"), a * 100.0, prec);
    } else if (s.type && (s.alt || s.type == 'n') && std::strchr("gGn", s.type)) {
      // C's %#g (fmt's '#' keeps a zero after the point, Python's does not); 'n' is 'g'.
      char buf[512];
      std::snprintf(buf, sizeof buf, s.alt ? "%#.*g" : "%.*g", std::min(prec, 400), a);
      body = buf;
      if (s.type == 'G') for (char& ch : body) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    } else if (s.type) {
      body = fmt::format(fmt::runtime("{:" + alt + ".{}" + std::string(1, s.type) + "}"), a, prec);
    } else {
      body = untyped_float(a, isFloat ? format_element(t, 0) : format_float(a, DType::F64), s.prec, s.alt);
    }
    // z: a negative zero after rounding loses its sign (not -inf)
    if (s.z && neg && std::isfinite(a) && body.find_first_of("123456789") == std::string::npos) neg = false;
  } else {
    if (s.prec >= 0) throw Error(fmt::format("format spec '{}': an integer takes no precision", spec));
    if (s.z) throw Error(fmt::format("format spec '{}': z (no negative zero) applies to floats only", spec));
    if (s.type == 'c' && (s.group || s.alt || s.sign != '-'))
      throw Error(fmt::format("format spec '{}': a character ('c') takes no sign, '#' or grouping", spec));
    const int64_t v = t.scalar_as_int64();
    neg = v < 0;
    const uint64_t a = neg ? uint64_t{0} - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
    if (s.type == 'c') {
      if (neg || a > 0x10FFFF) throw Error(fmt::format("format spec '{}': {} is not a character code (0 to 0x10FFFF)", spec, v));
      uint32_t c = static_cast<uint32_t>(a);
      if (c < 0x80) body = std::string(1, static_cast<char>(c));
      else if (c < 0x800) body = {static_cast<char>(0xC0 | (c >> 6)), static_cast<char>(0x80 | (c & 0x3F))};
      else if (c < 0x10000)
        body = {static_cast<char>(0xE0 | (c >> 12)), static_cast<char>(0x80 | ((c >> 6) & 0x3F)), static_cast<char>(0x80 | (c & 0x3F))};
      else
        body = {static_cast<char>(0xF0 | (c >> 18)), static_cast<char>(0x80 | ((c >> 12) & 0x3F)),
                static_cast<char>(0x80 | ((c >> 6) & 0x3F)), static_cast<char>(0x80 | (c & 0x3F))};
      neg = false;
    } else {
      const char type = s.type == 'n' || !s.type ? 'd' : s.type;
      body = fmt::format(fmt::runtime(std::string("{:") + (s.alt && type != 'o' ? "#" : "") + type + "}"), a);
      if (s.alt && type == 'o') body = "0o" + body;  // Python's prefix (C's is a 0)
    }
  }
  std::string sign = neg ? "-" : s.sign == '+' ? "+" : s.sign == ' ' ? " " : "";
  // `0` before the width: fill 0 (unless a fill is given) after the sign (unless aligned).
  const std::string fill = s.zero && !s.fillGiven ? "0" : s.fill;
  const char align = s.align ? s.align : t.dtype() == DType::Bool ? '<' : s.zero ? '=' : '>';
  const bool finite = !(isFloat || floatType) || std::isfinite(t.scalar_as_double());
  if (s.group && finite) {  // inf and nan have no digits to group (zero padding below, as Python's)
    const bool radix = s.type && std::strchr("boxX", s.type);
    const int every = s.group == '_' && radix ? 4 : 3;
    // Zero fill between the sign and the digits is grouped (Python's "{:010,}").
    const size_t minDigits = fill == "0" && align == '=' && s.width > sign.size() ? s.width - sign.size() : 0;
    body = group_digits(body, s.group, every, s.type == 'x' || s.type == 'X', minDigits);
  }
  // Characters, not bytes, count toward the width.
  auto length = [](const std::string& x) {
    size_t n = 0;
    for (unsigned char ch : x) n += (ch & 0xC0) != 0x80;
    return n;
  };
  const size_t used = length(sign) + length(body);
  if (used >= s.width) return sign + body;
  const size_t pad = s.width - used;
  auto fills = [&](size_t n) {
    std::string out;
    for (size_t i = 0; i < n; ++i) out += fill;
    return out;
  };
  switch (align) {
    case '<': return sign + body + fills(pad);
    case '^': return fills(pad / 2) + sign + body + fills(pad - pad / 2);
    case '=': {
      // After the sign, and after a 0x prefix, as Python's.
      size_t cut = body.size() > 1 && body[0] == '0' && std::strchr("bBoOxX", body[1]) && s.alt ? 2 : 0;
      return sign + body.substr(0, cut) + fills(pad) + body.substr(cut);
    }
    default: return fills(pad) + sign + body;
  }
}

}  // namespace

std::string format_with_spec(const Tensor& t, const std::string& spec) {
  if (spec.empty()) return format_tensor(t);
  const PySpec s = parse_spec(spec);  // its errors name the spec
  try {
    if (t.rank() == 0) return format_number(t, s, spec);
    // A tensor: the spec applied to every element (SPEC §12), laid out as print does.
    return format_tensor_with(t, &spec);
  } catch (const fmt::format_error& e) {
    throw Error(fmt::format("invalid format spec '{}' for {}: {}", spec, t.type_str(), e.what()));
  }
}

void TextLayout::text(std::string_view s) {
  if (groups_.empty()) {
    top_ += s;
    return;
  }
  std::string& cur = groups_.back().cur;
  size_t nl = s.find('\n');
  if (nl == std::string_view::npos) {
    cur += s;
    return;
  }
  size_t lineStart = cur.rfind('\n');
  size_t column = lineStart == std::string::npos ? cur.size() : cur.size() - lineStart - 1;
  std::string pad(column, ' ');
  size_t from = 0;
  while (nl != std::string_view::npos) {
    cur.append(s.substr(from, nl + 1 - from));
    cur += pad;
    from = nl + 1;
    nl = s.find('\n', from);
  }
  cur.append(s.substr(from));
}

void TextLayout::open(std::string_view bracket) {
  groups_.emplace_back();
  groups_.back().bracket = bracket;
}

void TextLayout::next() {
  if (groups_.empty()) return;
  Group& g = groups_.back();
  g.items.push_back(std::move(g.cur));
  g.cur.clear();
}

void TextLayout::close() {
  if (groups_.empty()) return;
  Group g = std::move(groups_.back());
  groups_.pop_back();
  g.items.push_back(std::move(g.cur));
  bool broken = false;
  for (const std::string& item : g.items) broken = broken || item.find('\n') != std::string::npos;
  // Items were laid out from column 0 of their own, and text() puts the whole group at the
  // enclosing column, so a broken group's items start a bracket's width in.
  std::string joined = std::move(g.bracket);
  const size_t indent = joined.size();
  for (size_t i = 0; i < g.items.size(); ++i) {
    if (i && !broken) joined += ", ";
    if (i && broken) joined += ",\n" + std::string(indent, ' ');
    const std::string& item = g.items[i];
    for (size_t from = 0;;) {  // the item's own continuation lines shift with it
      size_t nl = item.find('\n', from);
      joined.append(item, from, nl == std::string::npos ? std::string::npos : nl + 1 - from);
      if (nl == std::string::npos) break;
      joined.append(indent, ' ');
      from = nl + 1;
    }
  }
  text(joined);
}

std::string TextLayout::take() {
  while (!groups_.empty()) close();
  return std::move(top_);
}

std::string fill_format(const std::string& format, const std::vector<Tensor>& in) {
  TextLayout out;
  std::string run;  // literal text not yet handed to the layout
  auto flush = [&] {
    out.text(run);
    run.clear();
  };
  size_t k = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    char ch = format[i];
    if ((ch == '{' || ch == '}') && i + 1 < format.size() && format[i + 1] == ch) {
      run += ch;
      ++i;
    } else if (ch == '{' && i + 1 < format.size() && format[i + 1] == '}') {
      flush();
      if (k < in.size()) out.text(format_tensor(in[k++]));
      ++i;
    } else if (ch == '{' && i + 2 < format.size() && format[i + 2] == '}' &&
               (format[i + 1] == '<' || format[i + 1] == ',' || format[i + 1] == '>')) {
      // `{<}` directly follows its container's opening bracket, which belongs to the group
      std::string bracket;
      if (format[i + 1] == '<' && !run.empty()) {
        bracket = run.substr(run.size() - 1);
        run.pop_back();
      }
      flush();
      if (format[i + 1] == '<') out.open(bracket);
      else if (format[i + 1] == ',') out.next();
      else out.close();
      i += 2;
    } else if (ch == '{' && i + 1 < format.size() && format[i + 1] == ':') {
      // `{:spec}`: an f-string field with a format spec
      size_t close = format.find('}', i + 2);
      if (close == std::string::npos) close = format.size();
      flush();
      if (k < in.size()) out.text(format_with_spec(in[k++], format.substr(i + 2, close - i - 2)));
      i = close;
    } else {
      run += ch;
    }
  }
  flush();
  return out.take();
}

}  // namespace tdl::rt
