#include "ir/Parser.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_map>

#include "ir/ShapeInference.h"
#include "runtime/Error.h"

namespace tdl::ir {

ParseError::ParseError(uint32_t l, uint32_t c, const std::string& m)
    : std::runtime_error(fmt::format("{}:{}: error: {}", l, c, m)), line(l), col(c), message(m) {}

namespace {

enum class Tok { End, Ident, Value, Func, Label, Number, String, Punct };

struct Token {
  Tok kind = Tok::End;
  std::string text;  // identifier/number/punct text; name without its sigil; decoded string
  uint32_t line = 1, col = 1;
};

bool ident_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.'; }

class Lexer {
 public:
  explicit Lexer(std::string_view s) : s_(s) {}

  Token next() {
    skip_space();
    Token t;
    t.line = line_;
    t.col = col_;
    if (i_ >= s_.size()) return t;
    char c = s_[i_];
    if (c == '%' || c == '@' || c == '^') {
      advance();
      t.kind = c == '%' ? Tok::Value : c == '@' ? Tok::Func : Tok::Label;
      t.text = take_while(ident_char);
      if (t.text.empty()) error(t, std::string("expected a name after '") + c + "'");
      return t;
    }
    if (c == '?') {  // anonymous symbolic dim ?k
      advance();
      t.kind = Tok::Ident;
      t.text = "?" + take_while([](char d) { return std::isdigit(static_cast<unsigned char>(d)) != 0; });
      if (t.text.size() == 1) error(t, "expected digits after '?'");
      return t;
    }
    if (ident_start(c)) {
      t.kind = Tok::Ident;
      t.text = take_while(ident_char);
      return t;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || (c == '-' && i_ + 1 < s_.size() &&
                                                       (std::isdigit(static_cast<unsigned char>(s_[i_ + 1])) ||
                                                        s_.substr(i_ + 1, 3) == "inf"))) {
      t.kind = Tok::Number;
      t.text = number();
      return t;
    }
    if (c == '"') {
      t.kind = Tok::String;
      t.text = string(t);
      return t;
    }
    if (c == '-' && i_ + 1 < s_.size() && s_[i_ + 1] == '>') {
      advance();
      advance();
      t.kind = Tok::Punct;
      t.text = "->";
      return t;
    }
    if (std::strchr("(){}[]<>,:=", c) && c != '\0') {
      advance();
      t.kind = Tok::Punct;
      t.text = std::string(1, c);
      return t;
    }
    error(t, fmt::format("unexpected character '{}'", std::isprint(static_cast<unsigned char>(c)) ? std::string(1, c)
                                                                                                  : fmt::format("\\x{:02x}", static_cast<unsigned char>(c))));
  }

 private:
  [[noreturn]] static void error(const Token& t, const std::string& m) { throw ParseError(t.line, t.col, m); }

  void advance() {
    if (s_[i_] == '\n') {
      ++line_;
      col_ = 1;
    } else {
      ++col_;
    }
    ++i_;
  }

  void skip_space() {
    while (i_ < s_.size()) {
      char c = s_[i_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        advance();
      } else if (c == '/' && i_ + 1 < s_.size() && s_[i_ + 1] == '/') {
        while (i_ < s_.size() && s_[i_] != '\n') advance();
      } else {
        break;
      }
    }
  }

  template <class P> std::string take_while(P p) {
    size_t b = i_;
    while (i_ < s_.size() && p(s_[i_])) advance();
    return std::string(s_.substr(b, i_ - b));
  }

  std::string number() {
    size_t b = i_;
    if (s_[i_] == '-') advance();
    if (s_.substr(i_, 3) == "inf") {
      for (int k = 0; k < 3; ++k) advance();
      return std::string(s_.substr(b, i_ - b));
    }
    auto digits = [&] {
      while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) advance();
    };
    digits();
    if (i_ < s_.size() && s_[i_] == '.') {
      advance();
      digits();
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      advance();
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) advance();
      digits();
    }
    return std::string(s_.substr(b, i_ - b));
  }

  std::string string(const Token& t) {
    advance();  // opening quote
    std::string out;
    while (true) {
      if (i_ >= s_.size() || s_[i_] == '\n') error(t, "unterminated string");
      char c = s_[i_];
      advance();
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) error(t, "unterminated string");
      char e = s_[i_];
      advance();
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case 'x': {
          std::string h;
          for (int k = 0; k < 2 && i_ < s_.size() && std::isxdigit(static_cast<unsigned char>(s_[i_])); ++k) {
            h += s_[i_];
            advance();
          }
          if (h.size() != 2) error(t, "\\x needs two hex digits");
          out += static_cast<char>(std::stoi(h, nullptr, 16));
          break;
        }
        default: error(t, fmt::format("unknown escape '\\{}'", e));
      }
    }
  }

  std::string_view s_;
  size_t i_ = 0;
  uint32_t line_ = 1, col_ = 1;
};

class Parser {
 public:
  explicit Parser(std::string_view text, const WeightLookup* weights = nullptr) : lex_(text), weights_(weights) {
    tok_ = lex_.next();
    peek_ = lex_.next();
  }

  std::unique_ptr<Module> module() {
    auto m = std::make_unique<Module>();
    while (tok_.kind != Tok::End) function(*m);
    return m;
  }

 private:
  // ---- tokens ----
  [[noreturn]] void error(const std::string& m) { throw ParseError(tok_.line, tok_.col, m); }
  [[noreturn]] void error_at(const Token& t, const std::string& m) { throw ParseError(t.line, t.col, m); }

  Token advance() {
    Token t = std::move(tok_);
    tok_ = std::move(peek_);
    peek_ = tok_.kind == Tok::End ? Token{Tok::End, "", tok_.line, tok_.col} : lex_.next();
    return t;
  }
  bool is(const char* punct) const { return tok_.kind == Tok::Punct && tok_.text == punct; }
  bool is_ident(const char* word) const { return tok_.kind == Tok::Ident && tok_.text == word; }
  bool accept(const char* punct) {
    if (!is(punct)) return false;
    advance();
    return true;
  }
  std::string describe() const {
    switch (tok_.kind) {
      case Tok::End: return "the end of the input";
      case Tok::Value: return "'%" + tok_.text + "'";
      case Tok::Func: return "'@" + tok_.text + "'";
      case Tok::Label: return "'^" + tok_.text + "'";
      case Tok::String: return "a string";
      default: return "'" + tok_.text + "'";
    }
  }
  void expect(const char* punct) {
    if (!accept(punct)) error(fmt::format("expected '{}', got {}", punct, describe()));
  }
  Token expect_kind(Tok k, const char* what) {
    if (tok_.kind != k) error(fmt::format("expected {}, got {}", what, describe()));
    return advance();
  }

  // Comma-separated items up to `close` (the opening bracket already consumed).
  template <class F> void list(const char* close, F item) {
    if (accept(close)) return;
    do item();
    while (accept(","));
    expect(close);
  }

  // ---- numbers ----
  int64_t integer(const Token& t) {
    if (t.kind != Tok::Number) error_at(t, "expected an integer, got '" + t.text + "'");
    int64_t v = 0;
    auto [p, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
    if (ec == std::errc::result_out_of_range) error_at(t, "integer '" + t.text + "' does not fit in 64 bits");
    if (ec != std::errc() || p != t.text.data() + t.text.size()) error_at(t, "expected an integer, got '" + t.text + "'");
    return v;
  }

  template <class T> T floating(const Token& t) {
    const std::string& s = t.text;
    if (s == "nan") return std::numeric_limits<T>::quiet_NaN();
    if (s == "inf") return std::numeric_limits<T>::infinity();
    if (s == "-inf") return -std::numeric_limits<T>::infinity();
    if (t.kind != Tok::Number) error_at(t, "expected a number, got '" + s + "'");
    T v{};
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc::result_out_of_range) error_at(t, "number '" + s + "' is out of range");
    if (ec != std::errc() || p != s.data() + s.size()) error_at(t, "expected a number, got '" + s + "'");
    return v;
  }

  static bool looks_float(const Token& t) {
    return t.kind == Tok::Number && t.text.find_first_of(".eEn") != std::string::npos;
  }

  // ---- types ----
  TensorType type() {
    Token d = expect_kind(Tok::Ident, "a dtype");
    auto dtype = rt::dtype_from_name(d.text);
    if (!dtype) error_at(d, "unknown dtype '" + d.text + "'");
    expect("[");
    std::vector<Dim> dims;
    list("]", [&] {
      if (dims.size() >= static_cast<size_t>(rt::kMaxRank)) error(fmt::format("rank exceeds the maximum of {}", rt::kMaxRank));
      if (tok_.kind == Tok::Ident) {
        Token s = advance();
        if (!fn_->has_sym(s.text)) error_at(s, "undeclared symbolic dim '" + s.text + "'");
        dims.push_back(Dim::symbolic(s.text));
      } else {
        Token n = advance();
        int64_t v = integer(n);
        if (v < 0) error_at(n, "a dim cannot be negative");
        dims.push_back(Dim::known(v));
      }
    });
    return TensorType(*dtype, std::move(dims));
  }

  // ---- attributes ----
  Attribute attribute() {
    if (tok_.kind == Tok::String) return advance().text;
    if (is("[")) {
      advance();
      IntList v;
      list("]", [&] { v.push_back(integer(advance())); });
      return v;
    }
    if (tok_.kind == Tok::Number || is_ident("nan") || is_ident("inf")) {
      Token t = advance();
      if (looks_float(t) || t.kind == Tok::Ident) return floating<double>(t);
      return integer(t);
    }
    if (is_ident("true") || is_ident("false")) return advance().text == "true";
    if (is_ident("dense")) return dense();
    if (tok_.kind == Tok::Ident) {
      if (auto d = rt::dtype_from_name(tok_.text)) {
        advance();
        return *d;
      }
    }
    error("expected an attribute value, got " + describe());
  }

  void element(rt::Tensor& t, int64_t i, const Token& tk) {
    if (t.dtype() == DType::I8) {  // int8-quantized weights (rt::dispatch refuses i8)
      int64_t v = integer(tk);
      if (v < -128 || v > 127) error_at(tk, "'" + tk.text + "' does not fit in i8");
      t.mutable_data<int8_t>()[i] = static_cast<int8_t>(v);
      return;
    }
    rt::dispatch(t.dtype(), [&](auto tag) {
      using T = decltype(tag);
      T* p = t.mutable_data<T>();
      if constexpr (std::is_same_v<T, bool>) {
        if (tk.text != "true" && tk.text != "false") error_at(tk, "expected true or false, got '" + tk.text + "'");
        p[i] = tk.text == "true";
      } else if constexpr (std::is_floating_point_v<T>) {
        p[i] = floating<T>(tk);
      } else {
        int64_t v = integer(tk);
        if (v < std::numeric_limits<T>::min() || v > std::numeric_limits<T>::max())
          error_at(tk, "'" + tk.text + "' does not fit in " + std::string(rt::dtype_name(t.dtype())));
        p[i] = static_cast<T>(v);
      }
    });
  }

  rt::Tensor allocate(const TensorType& type, const Token& at) {
    auto shape = type.static_shape();
    if (!shape) error_at(at, "a dense constant needs a static shape");
    auto n = rt::checked_numel(*shape);
    if (!n || *n > kMaxParsedElements) error_at(at, "the constant is too large");
    try {
      return rt::Tensor::empty(type.dtype, *shape);
    } catch (const rt::Error& e) {
      error_at(at, e.what());
    }
  }

  // dense<[e, ...] : T> | dense<splat e : T> | dense<hex "..." : T>
  rt::Tensor dense() {
    Token start = advance();
    expect("<");
    std::vector<Token> elems;
    std::string form = "list";
    Token hex;
    if (is_ident("weight") && weights_) {
      advance();
      Token name = expect_kind(Tok::String, "a weight name");
      expect(":");
      TensorType t = type();
      expect(">");
      rt::Tensor w;
      try {
        w = (*weights_)(name.text);
      } catch (const rt::Error& e) {
        error_at(name, e.what());
      }
      if (TensorType::of(w.dtype(), w.shape()).str() != t.str())
        error_at(name, fmt::format("the weight '{}' is {}, the constant is declared {}", name.text,
                                   TensorType::of(w.dtype(), w.shape()).str(), t.str()));
      return w;
    }
    if (is_ident("splat")) {
      advance();
      form = "splat";
      elems.push_back(advance());
    } else if (is_ident("hex")) {
      advance();
      form = "hex";
      hex = expect_kind(Tok::String, "a hex string");
    } else {
      expect("[");
      list("]", [&] {
        if (static_cast<int64_t>(elems.size()) >= kMaxParsedElements) error("the constant is too large");
        elems.push_back(advance());
      });
    }
    expect(":");
    TensorType t = type();
    expect(">");
    rt::Tensor out = allocate(t, start);
    if (form == "hex") {
      if (hex.text.size() != out.nbytes() * 2) error_at(hex, fmt::format("expected {} hex digits for {}", out.nbytes() * 2, t.str()));
      auto* p = static_cast<unsigned char*>(out.mutable_raw());
      for (size_t i = 0; i < out.nbytes(); ++i) {
        unsigned v = 0;
        auto [q, ec] = std::from_chars(hex.text.data() + 2 * i, hex.text.data() + 2 * i + 2, v, 16);
        if (ec != std::errc() || q != hex.text.data() + 2 * i + 2) error_at(hex, "bad hex digits");
        p[i] = static_cast<unsigned char>(v);
      }
      if (out.dtype() == DType::Bool)
        for (size_t i = 0; i < out.nbytes(); ++i)
          if (p[i] > 1) error_at(hex, "bool bytes must be 00 or 01");
    } else if (form == "splat") {
      for (int64_t i = 0; i < out.numel(); ++i) element(out, i, elems[0]);
    } else {
      if (static_cast<int64_t>(elems.size()) != out.numel())
        error_at(start, fmt::format("{} elements given for {}", elems.size(), t.str()));
      for (int64_t i = 0; i < out.numel(); ++i) element(out, i, elems[static_cast<size_t>(i)]);
    }
    return out;
  }

  // ---- values ----
  Value* use() {
    Token t = expect_kind(Tok::Value, "a value");
    auto it = values_.find(t.text);
    if (it == values_.end()) error_at(t, "use of undefined value '%" + t.text + "'");
    return it->second;
  }

  void define(const Token& name, Value* v) {
    if (!values_.emplace(name.text, v).second) error_at(name, "value '%" + name.text + "' is defined twice");
  }

  // ---- functions, ops, regions ----
  void function(Module& m) {
    if (!is_ident("func")) error("expected 'func', got " + describe());
    advance();
    Token name = expect_kind(Tok::Func, "a function name '@name'");
    if (m.find(name.text)) error_at(name, "function '@" + name.text + "' is defined twice");
    Function& f = m.add_function(name.text);
    fn_ = &f;
    values_.clear();
    if (accept("<")) {
      list(">", [&] {
        Token s = expect_kind(Tok::Ident, "a symbolic dim name");
        if (f.has_sym(s.text)) error_at(s, "symbolic dim '" + s.text + "' is declared twice");
        if (rt::dtype_from_name(s.text)) error_at(s, "a symbolic dim cannot be named like a dtype");
        f.syms.push_back(s.text);
      });
    }
    expect("(");
    list(")", [&] {
      Token v = expect_kind(Tok::Value, "a parameter '%name'");
      expect(":");
      define(v, f.add_param(type()));
    });
    expect("->");
    expect("(");
    list(")", [&] { f.result_types.push_back(type()); });
    expect("{");
    ops(f.entry(), 0);
    expect("}");
  }

  void ops(Block& b, int depth) {
    while (!is("}")) {
      if (tok_.kind == Tok::End) error("expected '}' before the end of the input");
      op(b, depth);
    }
  }

  void op(Block& b, int depth) {
    std::vector<Token> names;
    if (tok_.kind == Tok::Value) {
      do names.push_back(expect_kind(Tok::Value, "a result name"));
      while (accept(","));
      expect("=");
    }
    Token name = expect_kind(Tok::Ident, "an op name");
    auto kind = op_kind_from_name(name.text);
    if (!kind) error_at(name, "unknown op '" + name.text + "'");
    auto op = std::make_unique<Op>(*kind, Loc{});
    expect("(");
    list(")", [&] { op->add_operand(use()); });
    if (is("{") && peek_.kind != Tok::Label) {
      advance();
      list("}", [&] {
        Token key = expect_kind(Tok::Ident, "an attribute name");
        expect("=");
        if (!op->attrs.emplace(key.text, attribute()).second) error_at(key, "attribute '" + key.text + "' is given twice");
      });
    }
    std::vector<TensorType> types;
    if (accept(":")) {
      do types.push_back(type());
      while (accept(","));
    }
    if (types.size() != names.size())
      error_at(name, fmt::format("{} result names but {} result types", names.size(), types.size()));
    if (is_ident("loc")) op->loc = loc();
    for (const TensorType& t : types) op->add_result(t);
    Op& placed = b.append(std::move(op));
    while (is("{")) {
      if (depth + 1 > kMaxRegionDepth) error("regions nest too deeply");
      region(placed.add_region(), depth + 1);
    }
    for (size_t i = 0; i < names.size(); ++i) define(names[i], placed.result(i));
  }

  Loc loc() {
    Token start = advance();
    expect("(");
    std::vector<int64_t> parts;
    do {
      Token t = advance();
      int64_t v = integer(t);
      if (v < 0 || v > UINT32_MAX) error_at(t, "a location number must fit in 32 bits");
      parts.push_back(v);
    } while (accept(":") && parts.size() < 3);
    expect(")");
    if (parts.size() < 2) error_at(start, "expected loc(LINE:COL) or loc(FILE:LINE:COL)");
    size_t o = parts.size() - 2;
    return Loc::point(o ? static_cast<uint32_t>(parts[0]) : 0, static_cast<uint32_t>(parts[o]),
                      static_cast<uint32_t>(parts[o + 1]));
  }

  void region(Region& r, int depth) {
    expect("{");
    expect_kind(Tok::Label, "a block label '^name'");
    if (accept("(")) {
      list(")", [&] {
        Token v = expect_kind(Tok::Value, "a block argument '%name'");
        expect(":");
        define(v, r.block().add_arg(type()));
      });
    }
    expect(":");
    ops(r.block(), depth);
    expect("}");
  }

  Lexer lex_;
  const WeightLookup* weights_ = nullptr;
  Token tok_, peek_;
  Function* fn_ = nullptr;
  std::unordered_map<std::string, Value*> values_;
};

}  // namespace

std::unique_ptr<Module> parse_module(std::string_view text) { return Parser(text).module(); }
std::unique_ptr<Module> parse_module(std::string_view text, const WeightLookup& weights) {
  return Parser(text, &weights).module();
}

}  // namespace tdl::ir
