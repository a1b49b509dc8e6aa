#include "ir/Printer.h"

#include <fmt/format.h>

#include <sstream>
#include <unordered_map>

#include "runtime/Print.h"

namespace tdl::ir {

namespace {

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02x}", c);
        else out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

bool is_splat(const rt::Tensor& t) {
  size_t n = itemsize(t.dtype());
  const auto* p = static_cast<const unsigned char*>(t.raw());
  for (int64_t i = 1; i < t.numel(); ++i)
    if (std::memcmp(p, p + i * n, n) != 0) return false;
  return true;
}

std::string tensor_to_string(const rt::Tensor& t) {
  std::string type = TensorType::of(t.dtype(), t.shape()).str();
  if (t.numel() <= kMaxInlineElements) {
    std::string out = "dense<[";
    for (int64_t i = 0; i < t.numel(); ++i) {
      if (i) out += ", ";
      out += rt::format_element(t, i);
    }
    return out + "] : " + type + ">";
  }
  if (is_splat(t)) return "dense<splat " + rt::format_element(t, 0) + " : " + type + ">";
  std::string hex;
  hex.reserve(t.nbytes() * 2);
  const auto* p = static_cast<const unsigned char*>(t.raw());
  for (size_t i = 0; i < t.nbytes(); ++i) hex += fmt::format("{:02x}", p[i]);
  return "dense<hex \"" + hex + "\" : " + type + ">";
}

class Printer {
 public:
  explicit Printer(std::ostream& os, const WeightNamer* weights = nullptr) : os_(os), weights_(weights) {}

  void function(const Function& f) {
    number(f.entry());
    os_ << "func @" << f.name;
    if (!f.syms.empty()) {
      os_ << "<";
      for (size_t i = 0; i < f.syms.size(); ++i) os_ << (i ? ", " : "") << f.syms[i];
      os_ << ">";
    }
    os_ << "(";
    auto params = f.params();
    for (size_t i = 0; i < params.size(); ++i) os_ << (i ? ", " : "") << name(params[i]) << ": " << params[i]->type.str();
    os_ << ") -> (";
    for (size_t i = 0; i < f.result_types.size(); ++i) os_ << (i ? ", " : "") << f.result_types[i].str();
    os_ << ") {\n";
    ops(f.entry(), 1);
    os_ << "}\n";
  }

 private:
  // Numbers every value in print order first, so even IR that breaks dominance prints.
  void number(const Block& b) {
    for (Value* a : b.args()) ids_.emplace(a, ids_.size());
    for (size_t i = 0; i < b.size(); ++i) {
      const Op& op = b.op(i);
      for (Value* r : op.results()) ids_.emplace(r, ids_.size());
      for (size_t k = 0; k < op.num_regions(); ++k) number(op.region(k).block());
    }
  }

  std::string name(const Value* v) const {
    auto it = ids_.find(v);
    if (it == ids_.end()) return "%undefined";
    std::string s = "%";  // not `"%" + to_string(..)`: GCC 12 -Wrestrict false positive (PR105329)
    s += std::to_string(it->second);
    return s;
  }

  void indent(int depth) { os_ << std::string(static_cast<size_t>(depth) * 2, ' '); }

  void ops(const Block& b, int depth) {
    for (size_t i = 0; i < b.size(); ++i) op(b.op(i), depth);
  }

  void op(const Op& op, int depth) {
    indent(depth);
    auto results = op.results();
    for (size_t i = 0; i < results.size(); ++i) os_ << (i ? ", " : "") << name(results[i]);
    if (!results.empty()) os_ << " = ";
    os_ << op.name() << "(";
    for (size_t i = 0; i < op.num_operands(); ++i) os_ << (i ? ", " : "") << name(op.operand(i));
    os_ << ")";
    if (!op.attrs.empty()) {
      os_ << " {";
      bool first = true;
      for (const auto& [k, v] : op.attrs) {
        std::string name;
        if (weights_ && std::holds_alternative<rt::Tensor>(v)) name = (*weights_)(std::get<rt::Tensor>(v));
        if (!name.empty())
          os_ << (first ? "" : ", ") << k << " = dense<weight " << quote(name) << " : "
              << TensorType::of(std::get<rt::Tensor>(v).dtype(), std::get<rt::Tensor>(v).shape()).str() << ">";
        else
          os_ << (first ? "" : ", ") << k << " = " << attr_to_string(v);
        first = false;
      }
      os_ << "}";
    }
    if (!results.empty()) {
      os_ << " : ";
      for (size_t i = 0; i < results.size(); ++i) os_ << (i ? ", " : "") << results[i]->type.str();
    }
    if (op.loc.valid()) {
      os_ << " loc(";
      if (op.loc.file) os_ << op.loc.file << ":";
      os_ << op.loc.line << ":" << op.loc.col << ")";
    }
    std::istringstream labels{std::string(op.info().region_labels)};
    for (size_t r = 0; r < op.num_regions(); ++r) {
      std::string label;
      if (!(labels >> label)) label = "bb" + std::to_string(r);
      const Block& b = op.region(r).block();
      os_ << " {\n";
      indent(depth);
      os_ << "^" << label;
      if (b.num_args()) {
        os_ << "(";
        auto args = b.args();
        for (size_t i = 0; i < args.size(); ++i) os_ << (i ? ", " : "") << name(args[i]) << ": " << args[i]->type.str();
        os_ << ")";
      }
      os_ << ":\n";
      ops(b, depth + 1);
      indent(depth);
      os_ << "}";
    }
    os_ << "\n";
  }

  std::ostream& os_;
  const WeightNamer* weights_;
  std::unordered_map<const Value*, size_t> ids_;
};

}  // namespace

bool prints_inline(const rt::Tensor& t) { return t.numel() <= kMaxInlineElements || is_splat(t); }

std::string attr_to_string(const Attribute& a) {
  return std::visit(
      [](const auto& v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, int64_t>) return std::to_string(v);
        else if constexpr (std::is_same_v<T, double>) return rt::format_float(v, DType::F64);
        else if constexpr (std::is_same_v<T, std::string>) return quote(v);
        else if constexpr (std::is_same_v<T, bool>) return v ? "true" : "false";
        else if constexpr (std::is_same_v<T, IntList>) return fmt::format("[{}]", fmt::join(v, ", "));
        else if constexpr (std::is_same_v<T, DType>) return std::string(rt::dtype_name(v));
        else return tensor_to_string(v);
      },
      a);
}

void print(std::ostream& os, const Function& f) { Printer(os).function(f); }

void print(std::ostream& os, const Module& m) {
  for (size_t i = 0; i < m.functions.size(); ++i) {
    if (i) os << "\n";
    print(os, *m.functions[i]);
  }
}

std::string to_string(const Module& m) {
  std::ostringstream os;
  print(os, m);
  return os.str();
}

std::string to_string(const Function& f, const WeightNamer& weights) {
  std::ostringstream os;
  Printer(os, &weights).function(f);
  return os.str();
}

std::string to_string(const Function& f) {
  std::ostringstream os;
  print(os, f);
  return os.str();
}

}  // namespace tdl::ir
