#include "Print.h"

#include <fmt/format.h>

#include "Error.h"

#include <cctype>
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

void write_output(const std::string& text, FILE* out) {
  std::lock_guard<std::mutex> lock(g_console);
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

// Python's grouping option: `,` or `_` after the width ("{:,}", "{:>12,.2f}", "{:_x}"), which
// fmt lacks. The number is formatted without fill, alignment and width, the separator put
// every 3 digits of its integer part (every 4 for `_` with b, o, x, X), then padded.
std::optional<std::string> format_grouped(const Tensor& t, const std::string& spec) {
  size_t p = 0;
  if (spec.size() >= 2 && std::strchr("<>^=", spec[1])) p = 2;
  else if (!spec.empty() && std::strchr("<>^=", spec[0])) p = 1;
  const std::string align = spec.substr(0, p);
  size_t flags = p;
  if (p < spec.size() && std::strchr("+- ", spec[p])) ++p;
  if (p < spec.size() && spec[p] == 'z') ++p;
  if (p < spec.size() && spec[p] == '#') ++p;
  bool zero = false;
  if (p < spec.size() && spec[p] == '0') zero = true, ++p;
  size_t w = p;
  while (p < spec.size() && std::isdigit(static_cast<unsigned char>(spec[p]))) ++p;
  if (p >= spec.size() || (spec[p] != ',' && spec[p] != '_')) return std::nullopt;
  const char sep = spec[p];
  const std::string width = spec.substr(w, p - w);
  const std::string rest = spec.substr(p + 1);
  if (rest.find_first_of(",_") != std::string::npos) throw Error(fmt::format("invalid format spec '{}': two grouping options", spec));
  const char type = rest.empty() ? '\0' : rest.back();
  const int every = sep == '_' && std::strchr("boxX", type) && type ? 4 : 3;
  std::string sign = spec.substr(flags, w - flags - (zero ? 1 : 0));
  std::string body = format_with_spec(t, sign + rest);
  // The integer part: the first run of digits (hex digits for x, X) after any sign or prefix.
  const bool hex = type == 'x' || type == 'X';
  auto digit = [&](char ch) {
    return hex ? std::isxdigit(static_cast<unsigned char>(ch)) != 0 : std::isdigit(static_cast<unsigned char>(ch)) != 0;
  };
  size_t b = 0;
  while (b < body.size() && !digit(body[b])) ++b;
  if (b + 1 < body.size() && body[b] == '0' && std::strchr("bBoOxX", body[b + 1])) b += 2;  // the 0x prefix
  size_t e = b;
  while (e < body.size() && digit(body[e])) ++e;
  const std::string head = body.substr(0, b), tail = body.substr(e);
  auto group = [&](const std::string& run) {
    std::string g;
    for (size_t i = 0; i < run.size(); ++i) {
      if (i > 0 && (run.size() - i) % every == 0) g += sep;
      g += run[i];
    }
    return g;
  };
  std::string run = body.substr(b, e - b), grouped = group(run);
  const size_t n = width.empty() ? 0 : static_cast<size_t>(std::stoll(width));
  if (zero && align.empty()) {
    // Zero padding is grouped too, and never starts with a separator (Python's rule).
    while (head.size() + grouped.size() + tail.size() < n || grouped[0] == sep) grouped = group(run = "0" + run);
  }
  body = head + grouped + tail;
  if (width.empty()) return body;
  return fmt::format(fmt::runtime("{:" + (align.empty() ? std::string(">") : align) + width + "}"), body);
}

// A float under a spec with no type letter (Python's None type): `text` is its shortest
// text (TDL's, as printed). Without a precision that text; with one, like 'g' at that many
// significant digits except that fixed notation keeps a digit after the point and scientific
// starts at exponent precision - 1 ("{:.3}" of 3.14159 is 3.14, of 100.0 is 1e+02, of 3.0
// is 3.0). Then sign, fill, alignment (right, as for every number) and width. nullopt: a
// spec this does not parse (fmt reports it).
std::optional<std::string> format_float_untyped(double x, const std::string& text, const std::string& spec) {
  size_t p = 0;
  char fill = ' ', align = '\0';
  auto isAlign = [](char c) { return c == '<' || c == '>' || c == '^' || c == '='; };
  if (spec.size() >= 2 && isAlign(spec[1])) fill = spec[0], align = spec[1], p = 2;
  else if (!spec.empty() && isAlign(spec[0])) align = spec[0], p = 1;
  char sign = '-';
  if (p < spec.size() && (spec[p] == '+' || spec[p] == '-' || spec[p] == ' ')) sign = spec[p++];
  bool zero = false;
  if (p < spec.size() && spec[p] == '0') zero = true, ++p;
  size_t w0 = p;
  while (p < spec.size() && std::isdigit(static_cast<unsigned char>(spec[p]))) ++p;
  size_t width = p > w0 ? static_cast<size_t>(std::stoul(spec.substr(w0, p - w0))) : 0;
  int prec = -1;
  if (p < spec.size() && spec[p] == '.') {
    size_t q0 = ++p;
    while (p < spec.size() && std::isdigit(static_cast<unsigned char>(spec[p]))) ++p;
    if (p == q0 || p - q0 > 3) return std::nullopt;
    prec = std::stoi(spec.substr(q0, p - q0));
  }
  if (p != spec.size()) return std::nullopt;
  bool neg = std::signbit(x) && !std::isnan(x);
  double a = std::fabs(x);
  std::string body;
  if (!std::isfinite(a)) {
    body = std::isnan(a) ? "nan" : "inf";
  } else if (prec < 0) {
    body = !text.empty() && text[0] == '-' ? text.substr(1) : text;
  } else {
    int digits = std::max(prec, 1);
    std::string e = fmt::format("{:.{}e}", a, digits - 1);  // the exponent after rounding
    int exp = std::stoi(e.substr(e.find('e') + 1));
    if (exp >= -4 && exp < digits - 1) {
      body = fmt::format("{:.{}f}", a, digits - 1 - exp);
      if (body.find('.') != std::string::npos) {
        while (body.back() == '0') body.pop_back();
        if (body.back() == '.') body += '0';
      } else {
        body += ".0";
      }
    } else {
      size_t ep = e.find('e');
      std::string mant = e.substr(0, ep);
      if (mant.find('.') != std::string::npos) {
        while (mant.back() == '0') mant.pop_back();
        if (mant.back() == '.') mant.pop_back();
      }
      body = mant + e.substr(ep);
    }
  }
  std::string signText = neg ? "-" : sign == '+' ? "+" : sign == ' ' ? " " : "";
  if (body.size() + signText.size() >= width) return signText + body;
  size_t pad = width - body.size() - signText.size();
  if (zero && align == '\0') return signText + std::string(pad, '0') + body;
  switch (align == '\0' ? '>' : align) {
    case '<': return signText + body + std::string(pad, fill);
    case '^': return std::string(pad / 2, fill) + signText + body + std::string(pad - pad / 2, fill);
    case '=': return signText + std::string(pad, fill) + body;
    default: return std::string(pad, fill) + signText + body;
  }
}

}  // namespace

std::string format_with_spec(const Tensor& t, const std::string& spec) {
  if (spec.empty()) return format_tensor(t);
  if (t.rank() == 0)
    if (auto g = format_grouped(t, spec)) return *g;
  std::string f = "{:" + spec + "}";
  try {
    if (t.rank() == 0) {
      char type = spec.back();
      bool floatType = type == 'f' || type == 'F' || type == 'e' || type == 'E' || type == 'g' || type == 'G' ||
                       type == '%';
      std::string text = format_element(t, 0);
      if (t.dtype() == DType::Bool) return fmt::format(fmt::runtime(f), text);
      bool isFloat = t.dtype() == DType::F32 || t.dtype() == DType::F64;
      if (isFloat || floatType) {
        if (type == 'd') throw Error(fmt::format("format spec '{}' needs an integer, got a float", spec));
        double x = t.scalar_as_double();
        if (std::isnan(x)) x = std::fabs(x);  // NaN has no sign to show (x86's default NaN has its sign bit set)
        if (type == '%') {
          std::string g = "{:" + spec.substr(0, spec.size() - 1) + "f}%";
          return fmt::format(fmt::runtime(g), x * 100.0);
        }
        if (!floatType && isFloat)
          if (auto r = format_float_untyped(x, text, spec)) return *r;
        if (t.dtype() == DType::F32 && !floatType) return fmt::format(fmt::runtime(f), static_cast<float>(x));
        return fmt::format(fmt::runtime(f), x);
      }
      // Python's '=' alignment (padding between the sign and the digits), which fmt lacks.
      size_t eq = spec.size() >= 2 && spec[1] == '=' ? 1 : !spec.empty() && spec[0] == '=' ? 0 : std::string::npos;
      if (eq != std::string::npos) {
        char fill = eq == 1 ? spec[0] : ' ';
        std::string rest = spec.substr(eq + 1);
        size_t p = 0;
        std::string head;
        while (p < rest.size() && std::strchr("+- #", rest[p])) head += rest[p++];
        if (p < rest.size() && rest[p] == '0') ++p;  // the fill is said already
        size_t w0 = p;
        while (p < rest.size() && std::isdigit(static_cast<unsigned char>(rest[p]))) ++p;
        size_t width = p > w0 ? static_cast<size_t>(std::stoul(rest.substr(w0, p - w0))) : 0;
        std::string body = fmt::format(fmt::runtime("{:" + head + rest.substr(p) + "}"), t.scalar_as_int64());
        size_t cut = !body.empty() && std::strchr("+- ", body[0]) ? 1 : 0;
        if (body.size() > cut + 1 && body[cut] == '0' && std::strchr("bBoOxX", body[cut + 1])) cut += 2;  // 0x prefix
        if (body.size() < width) body.insert(cut, width - body.size(), fill);
        return body;
      }
      return fmt::format(fmt::runtime(f), t.scalar_as_int64());
    }
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
