#include "ir/Verifier.h"

#include <fmt/format.h>

#include <unordered_set>

#include "ir/Pass.h"
#include "ir/ShapeInference.h"

namespace tdl::ir {

namespace {

std::string where(const Op& op) {
  if (!op.loc.valid()) return fmt::format("'{}'", op.name());
  return fmt::format("'{}' at {}:{}", op.name(), op.loc.line, op.loc.col);
}

class Verifier {
 public:
  explicit Verifier(const Function& f) : f_(f) {}

  std::vector<std::string> run() {
    for (Value* p : f_.params()) check_syms(p->type, "parameter");
    for (const TensorType& t : f_.result_types) check_syms(t, "result type");
    verify_block(f_.entry(), nullptr);
    return std::move(errors_);
  }

 private:
  void error(const std::string& m) { errors_.push_back(fmt::format("@{}: {}", f_.name, m)); }
  void op_error(const Op& op, const std::string& m) { error(where(op) + ": " + m); }

  void check_syms(const TensorType& t, const std::string& what) {
    for (const Dim& d : t.dims)
      if (d.is_symbolic() && !f_.has_sym(d.sym))
        error(fmt::format("{} {} uses the undeclared symbolic dim '{}'", what, t.str(), d.sym));
  }

  void verify_block(const Block& b, const Op* owner) {
    std::vector<const Value*> added;
    for (Value* a : b.args()) {
      check_syms(a->type, "block argument");
      visible_.insert(a);
      added.push_back(a);
    }
    if (b.empty() || !b.op(b.size() - 1).has_trait(kTerminator))
      error(fmt::format("a block of {} does not end in a terminator", owner ? where(*owner) : "the function body"));
    for (size_t i = 0; i < b.size(); ++i) {
      const Op& op = b.op(i);
      if (op.has_trait(kTerminator) && i + 1 != b.size()) op_error(op, "a terminator must be the last op of its block");
      verify_op(op, owner);
      for (Value* r : op.results()) {
        visible_.insert(r);
        added.push_back(r);
      }
    }
    for (const Value* v : added) visible_.erase(v);
  }

  bool counts_ok(const Op& op) {
    const OpInfo& info = op.info();
    bool ok = true;
    auto check = [&](int want, size_t got, const char* what) {
      if (want != kVariadic && static_cast<size_t>(want) != got) {
        op_error(op, fmt::format("expected {} {}, got {}", want, what, got));
        ok = false;
      }
    };
    check(info.operands, op.num_operands(), "operands");
    check(info.results, op.num_results(), "results");
    check(info.regions, op.num_regions(), "regions");
    return ok;
  }

  void verify_op(const Op& op, const Op* owner) {
    for (size_t i = 0; i < op.num_operands(); ++i)
      if (!visible_.count(op.operand(i)))
        op_error(op, fmt::format("operand {} is used outside the scope of its definition", i));
    for (Value* r : op.results()) check_syms(r->type, "result");
    if (!counts_ok(op)) return;
    try {
      check_op_types(op);
    } catch (const ShapeError& e) {
      op_error(op, e.what());
    }
    if (op.kind() == OpKind::Return && owner) op_error(op, "return is only allowed in the function body");
    if (op.kind() == OpKind::Yield && !owner) op_error(op, "yield is only allowed in a region of cond or while");
    if (op.kind() == OpKind::Return) check_values(op, op.operands(), f_.result_types, "returns", true);
    if (op.kind() == OpKind::Cond) verify_cond(op);
    if (op.kind() == OpKind::While) verify_while(op);
    if (op.kind() == OpKind::Fused) verify_fused(op);
    if (op.kind() == OpKind::FusedReduce) verify_fused_reduce(op);
    for (size_t r = 0; r < op.num_regions(); ++r) verify_block(op.region(r).block(), &op);
  }

  void check_values(const Op& op, const std::vector<Value*>& values, const std::vector<TensorType>& want,
                    const std::string& what, bool exact) {
    if (values.size() != want.size()) {
      op_error(op, fmt::format("{} {} values, expected {}", what, values.size(), want.size()));
      return;
    }
    for (size_t i = 0; i < values.size(); ++i) {
      bool ok = exact ? values[i]->type == want[i] : type_instance_of(values[i]->type, want[i]);
      if (!ok) op_error(op, fmt::format("{} {} as value {}, expected {}", what, values[i]->type.str(), i, want[i].str()));
    }
  }

  // The operands of the terminator of region r (empty when it has none).
  static std::vector<Value*> yielded(const Op& op, size_t r) {
    const Op* t = op.region(r).block().terminator();
    return t && t->kind() == OpKind::Yield ? t->operands() : std::vector<Value*>{};
  }

  std::vector<TensorType> result_types(const Op& op) {
    std::vector<TensorType> out;
    for (Value* v : op.results()) out.push_back(v->type);
    return out;
  }

  void verify_cond(const Op& op) {
    const TensorType& p = op.operand(0)->type;
    if (p.dtype != DType::Bool || !p.is_scalar()) op_error(op, "condition must be a bool scalar, got " + p.str());
    std::vector<TensorType> want = result_types(op);
    for (size_t r = 0; r < 2; ++r) {
      if (op.region(r).block().num_args() != 0) op_error(op, "the regions of cond take no arguments");
      check_values(op, yielded(op, r), want, r == 0 ? "the then region yields" : "the else region yields", false);
    }
  }

  void verify_while(const Op& op) {
    std::vector<TensorType> want = result_types(op);
    check_values(op, op.operands(), want, "the initial values are", false);
    for (size_t r = 0; r < 2; ++r) {
      const Block& b = op.region(r).block();
      std::vector<TensorType> args;
      for (Value* a : b.args()) args.push_back(a->type);
      if (args != want) op_error(op, fmt::format("the {} region must take the carried types", r == 0 ? "cond" : "body"));
    }
    check_values(op, yielded(op, 0), {TensorType::scalar(DType::Bool)}, "the cond region yields", true);
    check_values(op, yielded(op, 1), want, "the body region yields", false);
  }

  // fused: one scalar block argument per operand (its dtype); operands are scalars, rows,
  // columns or have the result's dims (at least one); the body yields one scalar of the result dtype.
  void verify_fused(const Op& op) {
    const TensorType& r = op.result()->type;
    const Block& b = op.region(0).block();
    if (b.num_args() != op.num_operands()) op_error(op, "the body must take one argument per operand");
    for (size_t i = 0; i < op.num_operands() && i < b.num_args(); ++i) {
      const TensorType& t = op.operand(i)->type;
      FusedOperand k = fused_operand_kind(t, r);
      if (k == FusedOperand::None)
        op_error(op, fmt::format("operand {} is {}: it does not broadcast to the result's shape {}", i, t.str(), r.str()));
      if (!(b.arg(i)->type == TensorType::scalar(t.dtype)))
        op_error(op, fmt::format("body argument {} must be {}", i, TensorType::scalar(t.dtype).str()));
    }
    if (r.is_scalar()) op_error(op, "a fused op's result must not be a scalar");
    else if (!operands_cover(op, r))
      op_error(op, "the operands' shapes must give the result's shape " + r.str() + " (each of its dims is an operand's)");
    check_values(op, yielded(op, 0), {TensorType::scalar(r.dtype)}, "the body yields", true);
    for (size_t i = 0; i < b.size(); ++i) {
      const Op& x = b.op(i);
      if (x.kind() == OpKind::Yield || x.kind() == OpKind::Constant) continue;
      if (!is_fusable_scalar_op(x)) op_error(x, "this op cannot be fused");
    }
  }

  // fused_reduce: a fused loop over operand 0's shape whose elements are summed (or
  // averaged) over all axes or the last one, into a float result.
  void verify_fused_reduce(const Op& op) {
    if (op.num_operands() == 0) {
      op_error(op, "a fused_reduce needs operands");
      return;
    }
    const TensorType d = fused_domain(op);
    const TensorType& r = op.result()->type;
    const Block& b = op.region(0).block();
    if (b.num_args() != op.num_operands()) op_error(op, "the body must take one argument per operand");
    if (d.is_scalar()) op_error(op, "the loop's domain (the operands' broadcast) must not be a scalar");
    for (size_t i = 0; i < op.num_operands() && i < b.num_args(); ++i) {
      const TensorType& t = op.operand(i)->type;
      if (fused_operand_kind(t, d) == FusedOperand::None)
        op_error(op, fmt::format("operand {} is {}: it does not broadcast to the domain's shape {}", i, t.str(), d.str()));
      if (!(b.arg(i)->type == TensorType::scalar(t.dtype)))
        op_error(op, fmt::format("body argument {} must be {}", i, TensorType::scalar(t.dtype).str()));
    }
    if (r.dtype != DType::F32 && r.dtype != DType::F64) op_error(op, "the result must be f32 or f64, not " + r.str());
    check_values(op, yielded(op, 0), {TensorType::scalar(r.dtype)}, "the body yields", true);
    auto kind = op.attrs.find("kind");
    if (kind == op.attrs.end() || !std::holds_alternative<std::string>(kind->second) ||
        (std::get<std::string>(kind->second) != "sum" && std::get<std::string>(kind->second) != "mean"))
      op_error(op, "kind must be \"sum\" or \"mean\"");
    auto axes = op.attrs.find("axes");
    auto keep = op.attrs.find("keepdims");
    if (axes == op.attrs.end() || !std::holds_alternative<IntList>(axes->second) || keep == op.attrs.end() ||
        !std::holds_alternative<bool>(keep->second)) {
      op_error(op, "needs attributes axes and keepdims");
      return;
    }
    const IntList& ax = std::get<IntList>(axes->second);
    bool keepdims = std::get<bool>(keep->second);
    int64_t rank = static_cast<int64_t>(d.rank());
    bool all = static_cast<int64_t>(ax.size()) == rank;
    for (size_t i = 0; all && i < ax.size(); ++i) all = ax[i] == static_cast<int64_t>(i);
    bool last = ax.size() == 1 && ax[0] == rank - 1;
    if (!all && !last) op_error(op, "axes must be all axes in order, or the last one");
    std::vector<Dim> want;
    for (int64_t i = 0; i < rank; ++i) {
      bool reduced = all || i == rank - 1;
      if (!reduced) want.push_back(d.dims[static_cast<size_t>(i)]);
      else if (keepdims) want.push_back(Dim::known(1));
    }
    if (r.dims != want) op_error(op, fmt::format("the result must be {}", TensorType(r.dtype, want).str()));
    for (size_t i = 0; i < b.size(); ++i) {
      const Op& x = b.op(i);
      if (x.kind() == OpKind::Yield || x.kind() == OpKind::Constant) continue;
      if (!is_fusable_scalar_op(x)) op_error(x, "this op cannot be fused");
    }
  }

  const Function& f_;
  std::unordered_set<const Value*> visible_;
  std::vector<std::string> errors_;
};

}  // namespace

bool type_instance_of(const TensorType& actual, const TensorType& general) {
  if (actual.dtype != general.dtype || actual.rank() != general.rank()) return false;
  for (size_t i = 0; i < actual.dims.size(); ++i)
    if (!(actual.dims[i] == general.dims[i]) && !general.dims[i].is_symbolic()) return false;
  return true;
}

std::vector<std::string> verify(const Function& f) { return Verifier(f).run(); }

std::vector<std::string> verify(const Module& m) {
  std::vector<std::string> out;
  std::unordered_set<std::string> names;
  for (auto& f : m.functions) {
    if (!names.insert(f->name).second) out.push_back("@" + f->name + ": the function is defined twice");
    auto e = verify(*f);
    out.insert(out.end(), e.begin(), e.end());
  }
  return out;
}

}  // namespace tdl::ir
