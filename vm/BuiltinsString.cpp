// A string's methods (s.split(","), ",".join(xs), s.strip(), ...), as Python's str methods:
// internal builtins `_str_NAME` (vm/str_methods.def) that a method call on a string reaches
// before any function of that name (strMethodId). Text is UTF-8; positions and lengths
// count code points (as len and indexing do); upper/lower change ASCII letters only.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "frontend/Diagnostics.h"
#include "runtime/Error.h"
#include "vm/Builtins.h"
#include "vm/ValueOps.h"

namespace tdl::vm {

namespace {
const std::vector<std::string>& methodNames() {
  static const std::vector<std::string> names = {
#define TDL_STR_METHOD(n) #n,
#include "vm/str_methods.def"
  };
  return names;
}
}  // namespace

int strMethodId(const std::string& name) {
  const auto& names = methodNames();
  if (std::find(names.begin(), names.end(), name) == names.end()) return -1;
  return builtinId("_str_" + name);
}

std::string strNoMethod(const std::string& name) {
  std::string near = didYouMean(name, methodNames());
  return fmt::format("a string has no method '{}'{}", name,
                     near.empty() ? fmt::format(" (its methods: {})", fmt::join(methodNames(), ", ")) : near);
}

namespace {

bool continues(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// Python's str.isspace: the ASCII controls \t..\r and \x1c..\x1f, space, and the Unicode
// spaces and separators (the code point's UTF-8 bytes).
bool isSpace(std::string_view c) {
  if (c.size() == 1) {
    unsigned char b = static_cast<unsigned char>(c[0]);
    return (b >= 0x09 && b <= 0x0D) || (b >= 0x1C && b <= 0x20);
  }
  static const std::vector<std::string_view> wide = {
      "\u0085", "\u00A0", "\u1680", "\u2000", "\u2001", "\u2002", "\u2003", "\u2004", "\u2005", "\u2006",
      "\u2007", "\u2008", "\u2009", "\u200A", "\u2028", "\u2029", "\u202F", "\u205F", "\u3000"};
  return std::find(wide.begin(), wide.end(), c) != wide.end();
}

// The string's code points, each as its bytes (an invalid byte counts one, as StrObj does).
std::vector<std::string_view> codePoints(std::string_view s) {
  std::vector<std::string_view> out;
  for (size_t i = 0; i < s.size();) {
    size_t n = 1;
    while (i + n < s.size() && continues(s[i + n])) ++n;
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

int64_t codePointsBefore(std::string_view s, size_t byte) {
  int64_t n = 0;
  for (size_t i = 0; i < byte && i < s.size(); ++i) n += continues(s[i]) ? 0 : 1;
  return n;
}

const std::string& self(const Args& a) { return a[0].as<StrObj>()->s; }

// Binds a string method's arguments (the string first); too many are counted as the call
// wrote them, without the string.
Args bind(const char* fn, const CallArgs& call, std::initializer_list<const char*> params, size_t required) {
  if (!call.describe && call.numPos() > static_cast<int>(params.size()))
    throw rt::Error(fmt::format("{}() takes {} ({} given)", fn,
                                params.size() == 1   ? std::string("no arguments")
                                : params.size() == 2 ? std::string("1 argument")
                                                     : fmt::format("at most {} arguments", params.size() - 1),
                                call.numPos() - 1));
  Args a(fn, call, params, required);
  if (!a[0].isStr()) a.fail(0, "a string");
  return a;
}

Value split(Interpreter&, CallArgs& call) {
  Args a = bind("split", call, {"s", "sep", "maxsplit"}, 1);
  const std::string& s = self(a);
  int64_t max = a.integerOr(2, -1);
  std::vector<Value> parts;
  if (!a.has(1) || a[1].isNone()) {  // runs of whitespace (Python's); none at the ends
    std::vector<std::string_view> cps = codePoints(s);
    size_t i = 0;
    while (i < cps.size() && isSpace(cps[i])) ++i;
    while (i < cps.size()) {
      std::string part;
      if (max >= 0 && static_cast<int64_t>(parts.size()) == max) {  // the rest as it is (Python's)
        for (; i < cps.size(); ++i) part += cps[i];
        parts.push_back(makeStr(std::move(part)));
        break;
      }
      for (; i < cps.size() && !isSpace(cps[i]); ++i) part += cps[i];
      parts.push_back(makeStr(std::move(part)));
      while (i < cps.size() && isSpace(cps[i])) ++i;
    }
    return makeList(std::move(parts));
  }
  std::string sep = a.string(1);
  if (sep.empty()) a.fail("empty separator");
  size_t i = 0;
  for (;;) {
    size_t j = max >= 0 && static_cast<int64_t>(parts.size()) == max ? std::string::npos : s.find(sep, i);
    if (j == std::string::npos) {
      parts.push_back(makeStr(s.substr(i)));
      break;
    }
    parts.push_back(makeStr(s.substr(i, j - i)));
    i = j + sep.size();
  }
  return makeList(std::move(parts));
}

Value join(Interpreter&, CallArgs& call) {
  Args a = bind("join", call, {"sep", "items"}, 2);
  const Value& xs = a[1];
  if (xs.tag() != Tag::List && xs.tag() != Tag::Tuple) a.fail(1, "a list or tuple of strings");
  std::string out;
  const auto& items = xs.as<SeqObj>()->items;
  for (size_t i = 0; i < items.size(); ++i) {
    if (!items[i].isStr()) a.fail(fmt::format("item {} is a {}, not a string (str(x) makes one)", i, typeText(items[i])));
    if (i) out += self(a);
    out += items[i].as<StrObj>()->s;
  }
  return makeStr(std::move(out));
}

// strip/lstrip/rstrip: the code points in `chars` (whitespace when none) off the ends.
template <bool left, bool right>
Value strip(Interpreter&, CallArgs& call) {
  const char* fn = left && right ? "strip" : left ? "lstrip" : "rstrip";
  Args a = bind(fn, call, {"s", "chars"}, 1);
  std::vector<std::string_view> cps = codePoints(self(a));
  const bool spaces = !a.has(1) || a[1].isNone();
  std::string chars = spaces ? std::string() : a.string(1);
  std::vector<std::string_view> set = codePoints(chars);
  auto in = [&](std::string_view c) { return spaces ? isSpace(c) : std::find(set.begin(), set.end(), c) != set.end(); };
  size_t b = 0, e = cps.size();
  if (left)
    while (b < e && in(cps[b])) ++b;
  if (right)
    while (e > b && in(cps[e - 1])) --e;
  std::string out;
  for (size_t i = b; i < e; ++i) out += cps[i];
  return makeStr(std::move(out));
}

Value replace(Interpreter&, CallArgs& call) {
  Args a = bind("replace", call, {"s", "old", "new", "count"}, 3);
  const std::string& s = self(a);
  std::string from = a.string(1), to = a.string(2);
  int64_t count = a.integerOr(3, -1);
  std::string out;
  int64_t done = 0;
  if (from.empty()) {  // before each code point and at the end, as Python's
    for (std::string_view c : codePoints(s)) {
      if (count < 0 || done < count) out += to, ++done;
      out += c;
    }
    if (count < 0 || done < count) out += to;
    return makeStr(std::move(out));
  }
  size_t i = 0;
  for (;;) {
    size_t j = count >= 0 && done == count ? std::string::npos : s.find(from, i);
    if (j == std::string::npos) break;
    out += s.substr(i, j - i);
    out += to;
    i = j + from.size();
    ++done;
  }
  out += s.substr(i);
  return makeStr(std::move(out));
}

// startswith/endswith: one string, or any of a tuple or list of strings.
template <bool start>
Value affix(Interpreter&, CallArgs& call) {
  const char* fn = start ? "startswith" : "endswith";
  Args a = bind(fn, call, {"s", start ? "prefix" : "suffix"}, 2);
  const std::string& s = self(a);
  std::vector<Value> options;
  if (a[1].isStr()) options.push_back(a[1]);
  else if (a[1].tag() == Tag::List || a[1].tag() == Tag::Tuple) options = a[1].as<SeqObj>()->items;
  else a.fail(1, "a string, or a tuple of strings");
  for (size_t i = 0; i < options.size(); ++i) {
    const Value& o = options[i];
    if (!o.isStr())
      a.fail(fmt::format("'{}': item {} of the {} is a {}, not a string", a.param(1), i, tagName(a[1].tag()),
                         typeText(o)));
    const std::string& p = o.as<StrObj>()->s;
    if (p.size() <= s.size() && s.compare(start ? 0 : s.size() - p.size(), p.size(), p) == 0) return Value::boolean(true);
  }
  return Value::boolean(false);
}

template <bool up>
Value changeCase(Interpreter&, CallArgs& call) {
  Args a = bind(up ? "upper" : "lower", call, {"s"}, 1);
  std::string out = self(a);
  for (char& c : out) {
    if (up && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (!up && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return makeStr(std::move(out));
}

// The part s[start:end] that find and count search (arguments 2 and 3, code points with
// Python's rules: negative from the end; end clamped to the length, start not, so a start
// past the end finds nothing, not even ""), as byte offsets, and its first code point's
// index. Empty (begin > end) where start passes end.
struct Span {
  size_t begin, end;
  int64_t first;
};
Span searchSpan(const Args& a, const std::string& s) {
  int64_t n = a[0].as<StrObj>()->length();
  auto norm = [&](size_t i, int64_t dflt) {
    int64_t v = a.integerOr(i, dflt);
    return v < 0 ? std::max<int64_t>(v + n, 0) : v;
  };
  int64_t lo = norm(2, 0), hi = std::min(norm(3, n), n);
  auto byteAt = [&](int64_t cp) {  // the byte offset of code point cp (s.size() at the end)
    size_t i = 0;
    for (int64_t k = 0; i < s.size(); ++i)
      if (!continues(s[i]) && k++ == cp) return i;
    return s.size();
  };
  if (lo > hi) return Span{1, 0, lo};
  return Span{byteAt(lo), byteAt(hi), lo};
}

Value find(Interpreter&, CallArgs& call) {
  Args a = bind("find", call, {"s", "sub", "start", "end"}, 2);
  const std::string& s = self(a);
  std::string sub = a.string(1);
  Span sp = searchSpan(a, s);
  if (sp.begin > sp.end) return Value::i64(-1);
  size_t at = std::string_view(s).substr(sp.begin, sp.end - sp.begin).find(sub);
  return Value::i64(at == std::string::npos ? -1 : sp.first + codePointsBefore(s.substr(sp.begin), at));
}

Value count(Interpreter&, CallArgs& call) {
  Args a = bind("count", call, {"s", "sub", "start", "end"}, 2);
  const std::string& s = self(a);
  std::string sub = a.string(1);
  Span sp = searchSpan(a, s);
  if (sp.begin > sp.end) return Value::i64(0);
  std::string_view part = std::string_view(s).substr(sp.begin, sp.end - sp.begin);
  if (sub.empty()) return Value::i64(codePointsBefore(part, part.size()) + 1);
  int64_t n = 0;
  for (size_t i = part.find(sub); i != std::string::npos; i = part.find(sub, i + sub.size())) ++n;
  return Value::i64(n);
}

}  // namespace

void registerStringBuiltins(BuiltinTable& t) {
  t.add("_str_split", split);
  t.add("_str_join", join);
  t.add("_str_strip", strip<true, true>);
  t.add("_str_lstrip", strip<true, false>);
  t.add("_str_rstrip", strip<false, true>);
  t.add("_str_replace", replace);
  t.add("_str_startswith", affix<true>);
  t.add("_str_endswith", affix<false>);
  t.add("_str_upper", changeCase<true>);
  t.add("_str_lower", changeCase<false>);
  t.add("_str_find", find);
  t.add("_str_count", count);
}

}  // namespace tdl::vm
