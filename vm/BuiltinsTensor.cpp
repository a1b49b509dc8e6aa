// Tensor builtins (SPEC §5): creation, elementwise math, reductions, linear
// algebra and shape operations, each a thin binding of a runtime function
// (the differentiable ones through vm/autodiff/Ops.h, which records them on
// an active tape).
// The elementwise and reduction builtins are generated from the runtime's own
// op lists (runtime/ops.def, rt::ReduceOp), so no op is listed twice.
#include <fmt/format.h>

#include "runtime/Create.h"
#include "runtime/Elementwise.h"
#include "runtime/Error.h"
#include "runtime/Matmul.h"
#include "runtime/Reduce.h"
#include "runtime/ShapeOps.h"
#include "vm/Builtins.h"
#include "vm/NumericOps.h"
#include "vm/ValueOps.h"
#include "vm/autodiff/Ops.h"

namespace tdl::vm {

namespace {

// Argument i, which must be a number or tensor (Args::tensor's check).
const Value& numeric(const Args& a, size_t i) {
  if (!a[i].isNumeric()) a.fail(i, "a tensor");
  return a[i];
}

// ------------------------------------------------------------- creation

Value zeros(Interpreter&, CallArgs& call) {
  Args a("zeros", call, {"shape", "dtype"}, 1);
  return fromTensor(rt::zeros(a.shape(0), a.dtype(1, DType::F32)));
}

Value ones(Interpreter&, CallArgs& call) {
  Args a("ones", call, {"shape", "dtype"}, 1);
  return fromTensor(rt::ones(a.shape(0), a.dtype(1, DType::F32)));
}

Value full(Interpreter&, CallArgs& call) {
  Args a("full", call, {"shape", "value", "dtype"}, 2);
  const Value& v = a[1];
  if (!v.isScalar()) a.fail(1, "a scalar");
  DType dt = a.dtype(2, strong(v).dtype());
  return fromTensor(rt::full(a.shape(0), scalarTensor(v, dt)));
}

Value zerosLike(Interpreter&, CallArgs& call) {
  Args a("zeros_like", call, {"x", "dtype"}, 1);
  rt::Tensor x = a.tensor(0);
  return fromTensor(rt::zeros(x.shape(), a.dtype(1, x.dtype())));
}

Value onesLike(Interpreter&, CallArgs& call) {
  Args a("ones_like", call, {"x", "dtype"}, 1);
  rt::Tensor x = a.tensor(0);
  return fromTensor(rt::ones(x.shape(), a.dtype(1, x.dtype())));
}

bool isIntegral(const Value& v) { return v.isNone() || (v.isScalar() && !v.isFloatScalar()); }

Value arange(Interpreter&, CallArgs& call) {
  Args a("arange", call, {"start", "stop", "step", "dtype"}, 1);
  Value start = Value::i64(0, true), stop = a[0], step = Value::i64(1, true);
  if (a.has(1) && !a[1].isNone()) {
    start = a[0];
    stop = a[1];
  }
  if (a.has(2)) step = a[2];
  for (const Value* v : {&start, &stop, &step})
    if (!v->isScalar()) throw rt::Error(fmt::format("arange(): bounds must be numbers, got {}", typeText(*v)));
  bool ints = isIntegral(start) && isIntegral(stop) && isIntegral(step);
  DType dt = a.dtype(3, ints ? DType::I64 : DType::F32);
  // The runtime's rule and errors (graph fns call the same function); float bounds exactly.
  auto bound = [](const Value& v) { return scalarTensor(v, v.isFloatScalar() ? DType::F64 : DType::I64); };
  return fromTensor(rt::arange_of(bound(start), bound(stop), bound(step), dt));
}

Value linspace(Interpreter&, CallArgs& call) {
  Args a("linspace", call, {"start", "stop", "num", "dtype"}, 3);
  int64_t n = a.integer(2);
  if (n < 0) a.fail("'num' must not be negative");
  // A weak bound is exact (linspace(0.1, 0.3, 3, dtype=f64) is [0.1, 0.2, 0.3]), as arange's
  // and graph fns' are.
  auto bound = [&](size_t i) { return a[i].isScalar() && a[i].weak() ? a[i].asDouble() : a.number(i); };
  return fromTensor(rt::linspace(bound(0), bound(1), n, a.dtype(3, DType::F32)));
}

Value eye(Interpreter&, CallArgs& call) {
  Args a("eye", call, {"n", "m", "dtype"}, 1);
  int64_t n = a.integer(0);
  if (n < 0) a.fail("'n' must not be negative");
  int64_t m = n;
  if (a.has(1) && !a[1].isNone()) {
    m = a.integer(1);
    if (m < 0) a.fail("'m' must not be negative");
  }
  return fromTensor(rt::eye(n, m, a.dtype(2, DType::F32)));
}

// ---------------------------------------------------------- elementwise

template <rt::UnaryOp Op>
Value unaryBuiltin(Interpreter&, CallArgs& call) {
  static const std::string name(rt::op_name(Op));
  Args a(name.c_str(), call, {"x"}, 1);
  if (!a[0].isNumeric()) a.fail(0, "a tensor");
  return unaryValues(Op, strong(a[0]));
}

template <rt::BinaryOp Op>
Value binaryBuiltin(Interpreter&, CallArgs& call) {
  static const std::string name(rt::op_name(Op));
  static const rt::BinaryParams p = rt::binary_params(Op);  // ops.def: "a, b" or "x, alpha=0.01"
  Args a(name.c_str(), call, {p.a.c_str(), p.b.c_str()}, p.b_default ? 1 : 2);
  if (!a[0].isNumeric()) a.fail(0, "a tensor");
  Value b = a.has(1) ? a[1] : Value::weakFloat(p.b_default.value_or(0));
  if (!b.isNumeric()) a.fail(1, "a tensor");
  return ad::elementwise(Op, a[0], b);
}

Value clip(Interpreter&, CallArgs& call) {
  Args a("clip", call, {"x", "lo", "hi"}, 3);
  // NumPy's: one bound may be none (no limit on that side), not both.
  if (a[1].isNone() && a[2].isNone()) throw rt::Error("clip(): 'lo' and 'hi' cannot both be none");
  for (size_t i = 0; i < 3; ++i)
    if (!a[i].isNumeric() && !(i > 0 && a[i].isNone())) a.fail(i, i == 0 ? "a tensor" : "a tensor or none");
  if (a[1].isNone()) return ad::elementwise(rt::BinaryOp::Minimum, a[0], a[2]);
  if (a[2].isNone()) return ad::elementwise(rt::BinaryOp::Maximum, a[0], a[1]);
  return ad::clip(a[0], a[1], a[2]);
}

Value where(Interpreter&, CallArgs& call) {
  Args a("where", call, {"cond", "a", "b"}, 3);
  for (size_t i = 1; i < 3; ++i)
    if (!a[i].isNumeric()) a.fail(i, "a tensor");
  numeric(a, 0);
  return ad::where(a[0], a[1], a[2]);
}

Value cast(Interpreter&, CallArgs& call) {
  Args a("cast", call, {"x", "dtype"}, 2);
  if (!a[0].isNumeric()) a.fail(0, "a tensor");
  if (a[1].tag() != Tag::DType) a.fail(1, "a dtype (bool, i32, i64, f32, f64)");
  return castValue(a[0], a[1].dtype());
}

// ----------------------------------------------------------- reductions

template <rt::ReduceOp Op>
Value reduceBuiltin(Interpreter& vm, CallArgs& call) {
  static const std::string name(rt::reduce_op_name(Op));
  if (name == "max" || name == "min") {  // Python's max(a, b, ...) of numbers or of strings
    std::vector<int64_t> ranks;
    bool strings = call.numPos() >= 2 && call.numKw() == 0;
    for (int i = 0; i < call.numPos(); ++i) {
      ranks.push_back(numberRank(call.args[i]));
      strings = strings && call.args[i].isStr();
    }
    if (strings) return extremeOfStrings(name, std::vector<Value>(call.args, call.args + call.numPos()));
    if (pythonExtremeOfNumbers(name, ranks, call.numKw() > 0)) {
      Value acc = call.args[0];
      for (int i = 1; i < call.numPos(); ++i) {
        Value two[2] = {acc, call.args[i]};
        CallArgs pair{two, 2, nullptr};
        acc = builtinFn(builtinId(name == "max" ? "maximum" : "minimum"))(vm, pair);
      }
      return acc;
    }
  }
  Args a(name.c_str(), call, {"x", "axis", "keepdims"}, 1);
  const Value& x = a[0];
  if ((x.isSeq() || x.tag() == Tag::Range) && reducesSequence(name) && !(a.has(1) && !a[1].isNone())) {
    if (x.tag() == Tag::Range) return ad::reduce(Op, rangeTensor(*x.as<RangeObj>()), a.axes(1), a.booleanOr(2, false));
    const auto& items = x.as<SeqObj>()->items;
    bool strings = !items.empty();
    for (const Value& v : items) strings = strings && v.isStr();
    if (strings) return extremeOfStrings(name, items);
    std::string bad;
    bool badTensor = false;
    for (const Value& v : items)
      if (!v.isScalar()) {
        bad = typeText(v);
        badTensor = v.isTensor();
        break;
      }
    if (std::string m = sequenceReduceError(name, items.size(), bad, badTensor); !m.empty()) throw rt::Error(m);
    if (items.empty()) return emptySequenceReduce(name);
    return ad::reduce(Op, ad::stack(x, 0), a.axes(1), a.booleanOr(2, false));
  }
  int64_t rank = numberRank(x);
  if (std::string m = extremeOfNumberError(name, rank, a.has(1) && !a[1].isNone()); !m.empty()) throw rt::Error(m);
  return ad::reduce(Op, numeric(a, 0), a.axes(1), a.booleanOr(2, false));
}

// -------------------------------------------------------- linear algebra

Value matmul(Interpreter&, CallArgs& call) {
  Args a("matmul", call, {"a", "b"}, 2);
  return ad::matmul(strong(numeric(a, 0)), strong(numeric(a, 1)));
}

Value dot(Interpreter&, CallArgs& call) {
  Args a("dot", call, {"a", "b"}, 2);
  return ad::dot(a[0], a[1]);
}

Value outer(Interpreter&, CallArgs& call) {
  Args a("outer", call, {"a", "b"}, 2);
  return ad::outer(a[0], a[1]);
}

Value transpose(Interpreter&, CallArgs& call) {
  Args a("transpose", call, {"x", "perm"}, 1);
  std::vector<int64_t> perm;
  if (a.has(1) && !a[1].isNone()) perm = a.ints(1);
  return ad::transpose(numeric(a, 0), perm);
}

// ------------------------------------------------------------------ shape

Value reshape(Interpreter&, CallArgs& call) {
  Args a("reshape", call, {"x", "shape"}, 2);
  return ad::reshape(numeric(a, 0), a.ints(1));
}

Value expandDims(Interpreter&, CallArgs& call) {
  Args a("expand_dims", call, {"x", "axis"}, 2);
  if (a[1].isSeq() || a[1].isTensor()) return ad::expandDims(numeric(a, 0), a.ints(1));  // several axes, as NumPy's
  return ad::expandDims(numeric(a, 0), a.integer(1));
}

Value squeeze(Interpreter&, CallArgs& call) {
  Args a("squeeze", call, {"x", "axis"}, 1);
  return ad::squeeze(numeric(a, 0), a.axes(1));
}

Value flatten(Interpreter&, CallArgs& call) {
  Args a("flatten", call, {"x"}, 1);
  return ad::flatten(numeric(a, 0));
}

const Value& tensorList(const Args& a, size_t i) {
  const Value& v = a[i];
  if (!v.isSeq()) a.fail(i, "a list or tuple of tensors");
  const auto& items = v.as<SeqObj>()->items;
  for (size_t k = 0; k < items.size(); ++k)
    if (!items[k].isNumeric())
      a.fail(fmt::format("'{}' must be a list or tuple of tensors, but item {} is a {}{}", a.param(i), k,
                         typeText(items[k]),
                         items[k].tag() == Tag::List ? " (a bracket literal with other than number literals is a "
                                                       "list: make it a tensor with stack([...]))"
                                                     : ""));
  return v;
}

Value concat(Interpreter&, CallArgs& call) {
  Args a("concat", call, {"xs", "axis"}, 1);
  return ad::concat(tensorList(a, 0), a.integerOr(1, 0));
}

Value stack(Interpreter&, CallArgs& call) {
  Args a("stack", call, {"xs", "axis"}, 1);
  return ad::stack(tensorList(a, 0), a.integerOr(1, 0));
}

Value broadcastTo(Interpreter&, CallArgs& call) {
  Args a("broadcast_to", call, {"x", "shape"}, 2);
  return ad::broadcastTo(numeric(a, 0), a.shape(1));
}

Value take(Interpreter&, CallArgs& call) {
  Args a("take", call, {"x", "idx", "axis"}, 2);
  return ad::take(numeric(a, 0), numeric(a, 1), a.integerOr(2, 0));
}

Value oneHot(Interpreter&, CallArgs& call) {
  Args a("one_hot", call, {"idx", "n", "dtype"}, 2);
  return fromTensor(rt::one_hot(a.tensor(0), a.integer(1), a.dtype(2, DType::F32)));
}

Value tile(Interpreter&, CallArgs& call) {
  Args a("tile", call, {"x", "reps"}, 2);
  return ad::tile(numeric(a, 0), a.ints(1));
}

}  // namespace

std::vector<std::pair<int64_t, int64_t>> padWidthsArg(const Value& w) {
  CallArgs call{&w, 1, nullptr};
  Args a("pad", call, {"widths"}, 1);
  std::vector<std::pair<int64_t, int64_t>> widths;
  auto pairOf = [&](const std::vector<int64_t>& p) {  // (before, after), or NumPy's (n,): n, n
    if (p.size() != 2 && p.size() != 1) a.fail(0, "(before, after) pairs");
    widths.emplace_back(p[0], p.back());
  };
  if (w.isScalar() && !w.isFloatScalar() && w.dtype() != DType::Bool) {
    widths.emplace_back(w.rawInt(), w.rawInt());  // NumPy's pad(x, n): n before and after, every axis
  } else if (w.isTensor()) {
    const rt::Tensor& t = w.as<TensorObj>()->t;
    // [b, a], [[b, a], ...]; NumPy's [n] and [[n], ...]: n before and after
    if (rt::is_float(t.dtype()) || t.rank() == 0 || t.rank() > 2 || (t.dim(t.rank() - 1) != 2 && t.dim(t.rank() - 1) != 1))
      a.fail(0, "(before, after) pairs");
    const int64_t per = t.dim(t.rank() - 1);
    for (int64_t i = 0; i + per - 1 < t.numel(); i += per) widths.emplace_back(t.item_int64(i), t.item_int64(i + per - 1));
  } else if (w.isSeq()) {
    const auto& items = w.as<SeqObj>()->items;
    bool nested = !items.empty() && (items[0].isSeq() || items[0].isTensor());
    if (!nested) {
      pairOf(a.ints(0));
    } else {
      for (auto& p : items) {
        CallArgs one{&p, 1, nullptr};
        Args pa("pad", one, {"widths"}, 1);
        pairOf(pa.ints(0));
      }
    }
  } else {
    a.fail(0, "(before, after) pairs");
  }
  return widths;
}

namespace {

Value pad(Interpreter&, CallArgs& call) {
  Args a("pad", call, {"x", "widths", "value"}, 2);
  rt::Tensor x = a.tensor(0);
  std::vector<std::pair<int64_t, int64_t>> widths = padWidthsArg(a[1]);
  rt::Tensor value = a.has(2) ? scalarTensor(a[2].isScalar() ? a[2] : Value::i64(0, true), x.dtype())
                              : rt::Tensor::scalar_of_int(x.dtype(), 0);
  if (a.has(2) && !a[2].isScalar()) a.fail(2, "a scalar");
  return ad::pad(a[0], widths, value, a.has(2) ? &a[2] : nullptr);
}

}  // namespace

void registerTensorBuiltins(BuiltinTable& t) {
  t.add("zeros", zeros);
  t.add("ones", ones);
  t.add("full", full);
  t.add("zeros_like", zerosLike);
  t.add("ones_like", onesLike);
  t.add("arange", arange);
  t.add("linspace", linspace);
  t.add("eye", eye);
  // Every runtime elementwise op whose name is a builtin (abs, exp, ..., maximum, pow).
#define TDL_UNARY_BUILTIN(e, n, ...) t.add(#n, unaryBuiltin<rt::UnaryOp::e>);
#define TDL_BINARY_BUILTIN(e, n, ...) t.add(#n, binaryBuiltin<rt::BinaryOp::e>);
#include "runtime/ops.def"
  t.add("clip", clip);
  t.add("where", where);
  t.add("cast", cast);
  t.add("sum", reduceBuiltin<rt::ReduceOp::Sum>);
  t.add("mean", reduceBuiltin<rt::ReduceOp::Mean>);
  t.add("max", reduceBuiltin<rt::ReduceOp::Max>);
  t.add("min", reduceBuiltin<rt::ReduceOp::Min>);
  t.add("prod", reduceBuiltin<rt::ReduceOp::Prod>);
  t.add("all", reduceBuiltin<rt::ReduceOp::All>);
  t.add("any", reduceBuiltin<rt::ReduceOp::Any>);
  t.add("argmax", reduceBuiltin<rt::ReduceOp::ArgMax>);
  t.add("argmin", reduceBuiltin<rt::ReduceOp::ArgMin>);
  t.add("logsumexp", reduceBuiltin<rt::ReduceOp::LogSumExp>);
  t.add("matmul", matmul);
  t.add("dot", dot);
  t.add("outer", outer);
  t.add("transpose", transpose);
  t.add("reshape", reshape);
  t.add("expand_dims", expandDims);
  t.add("squeeze", squeeze);
  t.add("flatten", flatten);
  t.add("concat", concat);
  t.add("stack", stack);
  t.add("broadcast_to", broadcastTo);
  t.add("take", take);
  t.add("one_hot", oneHot);
  t.add("tile", tile);
  t.add("pad", pad);
}

}  // namespace tdl::vm
