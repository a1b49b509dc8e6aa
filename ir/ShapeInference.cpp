// Shape and dtype rules of the IR ops, extended to symbolic dims. The known-size part
// always goes through runtime/Shape.h (and the dtype rules through the runtime's
// *_result_dtype functions), so the compiler, the VM and the kernels share one rule.
#include "ir/ShapeInference.h"

#include <algorithm>
#include <map>
#include <set>

#include "runtime/Error.h"
#include "runtime/Index.h"

namespace tdl::ir {

namespace {

[[noreturn]] void fail(const std::string& m) { throw ShapeError(m); }

template <class T> constexpr const char* attr_kind_name() {
  if constexpr (std::is_same_v<T, int64_t>) return "an int";
  else if constexpr (std::is_same_v<T, double>) return "a float";
  else if constexpr (std::is_same_v<T, std::string>) return "a string";
  else if constexpr (std::is_same_v<T, bool>) return "a bool";
  else if constexpr (std::is_same_v<T, IntList>) return "an int list";
  else if constexpr (std::is_same_v<T, DType>) return "a dtype";
  else return "a dense tensor";
}

template <class T> const T& get(const AttrMap& attrs, std::string_view name) {
  auto it = attrs.find(name);
  if (it == attrs.end()) fail("missing attribute '" + std::string(name) + "' (" + attr_kind_name<T>() + ")");
  const T* v = std::get_if<T>(&it->second);
  if (!v) fail("attribute '" + std::string(name) + "' must be " + attr_kind_name<T>());
  return *v;
}

// Runs a runtime rule, turning its Error into a ShapeError.
template <class F> auto runtime_rule(F&& f) {
  try {
    return f();
  } catch (const rt::Error& e) {
    fail(e.what());
  }
}

std::vector<Dim> known_dims(const rt::Shape& s) { return TensorType::of(DType::F32, s).dims; }

std::optional<rt::Shape> static_of(const std::vector<Dim>& dims) { return TensorType(DType::F32, dims).static_shape(); }

std::string broadcast_message(const std::vector<Dim>& a, const std::vector<Dim>& b) {
  return "cannot broadcast shapes " + dims_str(a) + " and " + dims_str(b);
}

// Run-time checks the rules below asked for (needs_run_time_check counts them).
thread_local int t_run_time_checks = 0;

// max/min/argmax/argmin over axes that may be empty fail at run time (rt::reduce's
// "cannot take max over an empty axis"): a check the op carries, so DCE keeps it unused.
void check_not_empty(const std::vector<Dim>& dims, const IntList& axes) {
  for (int64_t a : axes) {
    int64_t k = a < 0 ? a + static_cast<int64_t>(dims.size()) : a;
    if (k < 0 || k >= static_cast<int64_t>(dims.size())) continue;
    const Dim& d = dims[static_cast<size_t>(k)];
    if (!d.is_known() || d.size == 0) ++t_run_time_checks;
  }
}

// Two dims that must be equal (run-time check when symbolic): the better-known one.
Dim unify(const Dim& a, const Dim& b, const std::string& message) {
  if (a == b) return a;
  if (a.is_known() && b.is_known()) fail(message);
  ++t_run_time_checks;
  return a.is_known() ? a : (b.is_known() ? b : a);
}

int64_t checked_axis(int64_t axis, int64_t rank) {
  if (axis < 0 || axis >= rank)
    fail("axis " + std::to_string(axis) + " is out of range for a tensor of rank " + std::to_string(rank));
  return axis;
}

void require_integer_scalar(const TensorType& t, const char* what) {
  if (!t.is_scalar() || !rt::is_integer(t.dtype)) fail(std::string(what) + " must be an integer scalar, got " + t.str());
}

void require_count(const std::vector<TensorType>& operands, size_t n, const char* what) {
  if (operands.size() < n) fail(std::string("expected ") + what);
}

// Number of `{...}` holes in a format string (`{{` and `}}` are literal braces; `{<}`,
// `{,}` and `{>}` are layout directives, rt::fill_format).
int64_t count_holes(const std::string& f) {
  int64_t holes = 0;
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] == '{') {
      if (i + 1 < f.size() && f[i + 1] == '{') { ++i; continue; }
      if (i + 2 < f.size() && f[i + 2] == '}' && (f[i + 1] == '<' || f[i + 1] == ',' || f[i + 1] == '>')) {
        i += 2;
        continue;
      }
      size_t close = f.find('}', i);
      if (close == std::string::npos) fail("unterminated '{' in format");
      ++holes;
      i = close;
    } else if (f[i] == '}') {
      if (i + 1 < f.size() && f[i + 1] == '}') { ++i; continue; }
      fail("single '}' in format");
    }
  }
  return holes;
}

std::vector<Dim> slice_dims(const std::vector<Dim>& x, const AttrMap& attrs) {
  const IntList& start = get<IntList>(attrs, "start");
  const IntList& stop = get<IntList>(attrs, "stop");
  const IntList& step = get<IntList>(attrs, "step");
  if (start.size() != x.size() || stop.size() != x.size() || step.size() != x.size())
    fail("start, stop and step need one entry per axis (" + std::to_string(x.size()) + ")");
  std::vector<Dim> out;
  for (size_t i = 0; i < x.size(); ++i) {
    if (step[i] == 0) fail("slice step cannot be zero");
    if (x[i].is_symbolic()) {
      bool whole = start[i] == 0 && stop[i] == kSliceEnd && step[i] == 1;
      out.push_back(whole ? x[i] : Dim::symbolic(kAnyDim));
      continue;
    }
    rt::AxisRange r = runtime_rule([&] {
      return rt::resolve_index(rt::IndexItem::slice(start[i], stop[i], step[i]), static_cast<int64_t>(i), x[i].size);
    });
    out.push_back(Dim::known(r.count));
  }
  return out;
}

std::vector<Dim> reduce_dims(const std::vector<Dim>& x, const IntList& axes, bool keepdims) {
  int64_t rank = static_cast<int64_t>(x.size());
  std::vector<bool> mask = runtime_rule([&] { return rt::reduction_mask(axes, rank); });
  std::vector<Dim> out;
  for (size_t i = 0; i < x.size(); ++i) {
    if (!mask[i]) out.push_back(x[i]);
    else if (keepdims) out.push_back(Dim::known(1));
  }
  return out;
}

std::vector<Dim> concat_dims(const std::vector<TensorType>& xs, int64_t axis) {
  if (xs.empty()) fail("concat needs at least one operand");
  int64_t rank = xs[0].rank();
  checked_axis(axis, rank);
  std::vector<rt::Shape> shapes;
  for (const TensorType& t : xs) {
    if (auto s = t.static_shape()) shapes.push_back(*s);
  }
  if (shapes.size() == xs.size()) return known_dims(runtime_rule([&] { return rt::concat_shape(shapes, axis); }));
  std::vector<Dim> out = xs[0].dims;
  bool axis_known = out[axis].is_known();
  for (size_t k = 1; k < xs.size(); ++k) {
    // The runtime rule's message (rt::concat_shape).
    std::string msg = "cannot concatenate shapes " + dims_str(xs[0].dims) + " and " + dims_str(xs[k].dims) +
                      " along axis " + std::to_string(axis);
    if (xs[k].rank() != rank) fail(msg);
    for (int64_t i = 0; i < rank; ++i) {
      if (i == axis) {
        axis_known = axis_known && xs[k].dims[i].is_known();
        if (axis_known) out[i].size += xs[k].dims[i].size;
      } else {
        out[i] = unify(out[i], xs[k].dims[i], msg);
      }
    }
  }
  if (!axis_known) out[axis] = Dim::symbolic(kAnyDim);
  return out;
}

void check_broadcast_to(const std::vector<Dim>& from, const std::vector<Dim>& to) {
  auto sf = static_of(from), st = static_of(to);
  if (sf && st) return runtime_rule([&] { rt::check_broadcast_to(*sf, *st); });
  std::string msg = "cannot broadcast shape " + dims_str(from) + " to " + dims_str(to);
  if (from.size() > to.size()) fail(msg);
  size_t off = to.size() - from.size();
  for (size_t i = 0; i < from.size(); ++i) {
    const Dim& f = from[i];
    const Dim& t = to[off + i];
    if (f == t || (f.is_known() && f.size == 1)) continue;
    if (f.is_known() && t.is_known()) fail(msg);  // else a run-time check f == t
    ++t_run_time_checks;
  }
}

// [N, 4] -> [N, 2, 2] is fine; [N, 4] -> [N, 3] is not; different symbols: run-time check.
void check_reshape(const std::vector<Dim>& from, const std::vector<Dim>& to) {
  auto sf = static_of(from), st = static_of(to);
  if (sf && st) {
    rt::Shape got = runtime_rule([&] { return rt::reshape_shape(*sf, *st); });
    if (got != *st) fail("cannot reshape " + rt::shape_str(*sf) + " into " + rt::shape_str(*st));
    return;
  }
  auto split = [](const std::vector<Dim>& ds, std::multiset<std::string>& syms) {
    std::optional<int64_t> prod = 1;
    for (const Dim& d : ds) {
      if (d.is_symbolic()) syms.insert(d.sym);
      else if (prod) prod = (d.size != 0 && *prod > INT64_MAX / d.size) ? std::nullopt : std::optional(*prod * d.size);
    }
    return prod;
  };
  std::multiset<std::string> a, b;
  auto pa = split(from, a), pb = split(to, b);
  if (a == b && pa && pb && *pa != *pb && *pa != 0 && *pb != 0)
    fail("cannot reshape " + dims_str(from) + " into " + dims_str(to));
  if (!(a == b && pa && pb && *pa == *pb)) ++t_run_time_checks;  // the counts compared at run time
}

std::vector<Dim> index_dims(const std::vector<TensorType>& operands, size_t first_index) {
  const TensorType& x = operands[0];
  size_t n = operands.size() - first_index;
  if (static_cast<int64_t>(n) > x.rank())
    fail("too many indices (" + std::to_string(n) + ") for a tensor of rank " + std::to_string(x.rank()));
  for (size_t i = first_index; i < operands.size(); ++i) require_integer_scalar(operands[i], "an index");
  return std::vector<Dim>(x.dims.begin() + static_cast<ptrdiff_t>(n), x.dims.end());
}

DType binary_dtype(rt::BinaryOp op, DType a, DType b) {
  return runtime_rule([&] { return rt::binary_result_dtype(op, a, b); });
}

}  // namespace

bool is_any_dim(const Dim& d) { return d.sym == kAnyDim; }

bool type_matches(const TensorType& inferred, const TensorType& actual) {
  if (inferred.dtype != actual.dtype || inferred.rank() != actual.rank()) return false;
  for (size_t i = 0; i < inferred.dims.size(); ++i) {
    const Dim& d = inferred.dims[i];
    if (is_any_dim(d) ? !actual.dims[i].is_symbolic() : !(d == actual.dims[i])) return false;
  }
  return true;
}

std::vector<Dim> broadcast_dims(const std::vector<Dim>& a, const std::vector<Dim>& b) {
  auto sa = static_of(a), sb = static_of(b);
  if (sa && sb) return known_dims(runtime_rule([&] { return rt::broadcast_shapes(*sa, *sb); }));
  const std::vector<Dim>& longer = a.size() >= b.size() ? a : b;
  const std::vector<Dim>& shorter = a.size() >= b.size() ? b : a;
  std::vector<Dim> out = longer;
  size_t off = longer.size() - shorter.size();
  for (size_t i = 0; i < shorter.size(); ++i) {
    const Dim& x = out[off + i];
    const Dim& y = shorter[i];
    if (y.is_known() && y.size == 1) continue;
    if (x.is_known() && x.size == 1) { out[off + i] = y; continue; }
    // Equal; a known size (the symbol is it or 1 at run time); or two symbols, either of which
    // may be 1 at run time: a new symbol, bound by the result (NumPy's rule needs the sizes).
    if (x.is_symbolic() && y.is_symbolic() && !(x == y)) {
      out[off + i] = Dim::symbolic(kAnyDim);
      ++t_run_time_checks;
      continue;
    }
    Dim left = &longer == &a ? x : y, right = &longer == &a ? y : x;
    out[off + i] = unify(left, right, broadcast_message(a, b));
  }
  return out;
}

std::vector<Dim> matmul_dims(const std::vector<Dim>& a0, const std::vector<Dim>& b0) {
  auto sa = static_of(a0), sb = static_of(b0);
  if (sa && sb) return known_dims(runtime_rule([&] { return rt::matmul_shape(*sa, *sb); }));
  if (a0.empty() || b0.empty()) fail("matmul needs operands of rank >= 1, got " + dims_str(a0) + " and " + dims_str(b0));
  std::vector<Dim> a = a0, b = b0;
  bool a_vec = a.size() == 1, b_vec = b.size() == 1;
  if (a_vec) a.insert(a.begin(), Dim::known(1));
  if (b_vec) b.push_back(Dim::known(1));
  std::string msg = "cannot multiply shapes " + dims_str(a0) + " and " + dims_str(b0);
  const Dim &ka = a.back(), &kb = b[b.size() - 2];
  if (ka.is_known() && kb.is_known()) msg += " (" + std::to_string(ka.size) + " != " + std::to_string(kb.size) + ")";
  unify(a.back(), b[b.size() - 2], msg);
  std::vector<Dim> batch = broadcast_dims(std::vector<Dim>(a.begin(), a.end() - 2), std::vector<Dim>(b.begin(), b.end() - 2));
  if (!a_vec) batch.push_back(a[a.size() - 2]);
  if (!b_vec) batch.push_back(b.back());
  return batch;
}

std::optional<rt::ReduceOp> reduce_kind_from_name(std::string_view name) {
  for (rt::ReduceOp op : {rt::ReduceOp::Sum, rt::ReduceOp::Mean, rt::ReduceOp::Max, rt::ReduceOp::Min, rt::ReduceOp::Prod,
                          rt::ReduceOp::All, rt::ReduceOp::Any, rt::ReduceOp::LogSumExp})
    if (rt::reduce_op_name(op) == name) return op;
  return std::nullopt;
}

std::optional<std::vector<TensorType>> infer_result_types(OpKind kind, const std::vector<TensorType>& in,
                                                          const AttrMap& attrs) {
  using V = std::vector<TensorType>;
  if (auto op = as_binary(kind))
    return V{TensorType(binary_dtype(*op, in[0].dtype, in[1].dtype), broadcast_dims(in[0].dims, in[1].dims))};
  if (auto op = as_unary(kind))
    return V{TensorType(runtime_rule([&] { return rt::unary_result_dtype(*op, in[0].dtype); }), in[0].dims)};
  switch (kind) {
    case OpKind::Select: {
      if (in[0].dtype != DType::Bool) fail("the condition must be bool, got " + in[0].str());
      auto dims = broadcast_dims(broadcast_dims(in[0].dims, in[1].dims), in[2].dims);
      return V{TensorType(rt::promote(in[1].dtype, in[2].dtype), dims)};
    }
    case OpKind::Dim:
      checked_axis(get<int64_t>(attrs, "axis"), in[0].rank());
      return V{TensorType::scalar(DType::I64)};
    case OpKind::Transpose: {
      const IntList& perm = get<IntList>(attrs, "perm");
      IntList norm = runtime_rule([&] { return rt::normalize_perm(perm, in[0].rank()); });
      if (norm != perm) fail("perm must list every axis once, got " + rt::shape_str(perm));
      std::vector<Dim> dims;
      for (int64_t p : perm) dims.push_back(in[0].dims[p]);
      return V{TensorType(in[0].dtype, dims)};
    }
    case OpKind::Concat: {
      require_count(in, 1, "at least one operand");
      DType d = in[0].dtype;
      for (const TensorType& t : in) d = rt::promote(d, t.dtype);
      return V{TensorType(d, concat_dims(in, get<int64_t>(attrs, "axis")))};
    }
    case OpKind::Slice:
      return V{TensorType(in[0].dtype, slice_dims(in[0].dims, attrs))};
    case OpKind::Reduce: {
      const std::string& k = get<std::string>(attrs, "kind");
      auto op = reduce_kind_from_name(k);
      if (!op) fail("unknown reduction kind '" + k + "'");
      DType d = runtime_rule([&] { return rt::reduce_result_dtype(*op, in[0].dtype); });
      if (*op == rt::ReduceOp::Max || *op == rt::ReduceOp::Min)
        check_not_empty(in[0].dims, get<IntList>(attrs, "axes"));
      return V{TensorType(d, reduce_dims(in[0].dims, get<IntList>(attrs, "axes"), get<bool>(attrs, "keepdims")))};
    }
    case OpKind::ArgMax:
    case OpKind::ArgMin: {
      int64_t axis = checked_axis(get<int64_t>(attrs, "axis"), in[0].rank());
      check_not_empty(in[0].dims, {axis});
      return V{TensorType(DType::I64, reduce_dims(in[0].dims, {axis}, get<bool>(attrs, "keepdims")))};
    }
    case OpKind::Argsort:
    case OpKind::Scan: {
      if (in[0].rank() == 0) fail(std::string(op_info(kind).name) + " needs a tensor of rank >= 1, got a scalar");
      (void)checked_axis(get<int64_t>(attrs, "axis"), in[0].rank());
      DType dt = kind == OpKind::Argsort || !rt::is_float(in[0].dtype) ? DType::I64 : in[0].dtype;
      return V{TensorType(dt, in[0].dims)};
    }
    case OpKind::Im2col:
    case OpKind::Col2im: {
      IntList w = get<IntList>(attrs, "window");
      if (w.size() != 10 || in[0].rank() != 4) fail("im2col/col2im need a rank-4 operand and a window of 10 ints");
      const Dim& c = in[0].dims[3];
      int64_t taps = w[0] * w[1];
      if (kind == OpKind::Im2col) {
        Dim k = c.is_known() ? Dim::known(c.size * taps) : c;
        if (!c.is_known() && taps != 1) fail("im2col needs the channel count known");
        return V{TensorType(in[0].dtype, {in[0].dims[0], Dim::known(w[8]), Dim::known(w[9]), k})};
      }
      IntList sz = get<IntList>(attrs, "size");
      if (sz.size() != 2 || !c.is_known() || c.size % taps != 0) fail("col2im needs size [H, W] and columns of kh*kw*C");
      return V{TensorType(in[0].dtype, {in[0].dims[0], Dim::known(sz[0]), Dim::known(sz[1]), Dim::known(c.size / taps)})};
    }
    case OpKind::ConvNhwc: {
      if (in.size() != 2 && in.size() != 3) fail("conv_nhwc needs operands x and wm (or x and g, or g and wm), and an optional bias");
      IntList w = get<IntList>(attrs, "window");
      if (w.size() != 10 || in[0].rank() != 4 || in[0].dtype != in[1].dtype || !rt::is_float(in[0].dtype))
        fail("conv_nhwc needs a rank-4 x, a second operand of its float dtype and a window of 10 ints, got " +
             in[0].str() + " and " + in[1].str());
      const int64_t taps = w[0] * w[1];
      auto it = attrs.find("grad");
      const std::string grad = it != attrs.end() && std::holds_alternative<std::string>(it->second)
                                   ? std::get<std::string>(it->second)
                                   : "";
      const Dim& c = in[0].dims[3];
      if (grad == "filter" && in.size() == 2) {  // x [N, H, W, C], g [N, oh, ow, O] -> [kh*kw*C, O]
        if (in[1].rank() != 4 || !c.is_known()) fail("conv_nhwc (filter gradient) needs x with known channels and g [N, oh, ow, O]");
        unify(in[0].dims[0], in[1].dims[0], "conv_nhwc (filter gradient): x and g must have one batch size");
        return V{TensorType(in[0].dtype, {Dim::known(c.size * taps), in[1].dims[3]})};
      }
      if (in[1].rank() != 2) fail("conv_nhwc's wm must be [kh*kw*C, O], got " + in[1].str());
      const Dim& k = in[1].dims[0];
      if (in.size() == 3 && (!grad.empty() || in[2].rank() != 1 || in[2].dtype != in[0].dtype))
        fail("conv_nhwc's bias (a forward convolution's) must be [O] of x's dtype, got " + in[2].str());
      if (grad.empty()) {
        if (c.is_known() && k.is_known() && k.size != c.size * taps) fail("conv_nhwc's wm must have kh*kw*C rows");
        if (in.size() == 3) unify(in[2].dims[0], in[1].dims[1], "conv_nhwc's bias must have one entry per output channel");
        return V{TensorType(in[0].dtype, {in[0].dims[0], Dim::known(w[8]), Dim::known(w[9]), in[1].dims[1]})};
      }
      if (grad != "input") fail("conv_nhwc's grad must be \"input\" or \"filter\", got \"" + grad + "\"");
      IntList sz = get<IntList>(attrs, "size");
      if (sz.size() != 2 || !k.is_known() || k.size % taps != 0) fail("conv_nhwc (input gradient) needs size [H, W] and wm of kh*kw*C rows");
      unify(in[0].dims[3], in[1].dims[1], "conv_nhwc (input gradient): g's channels must be wm's columns");
      return V{TensorType(in[0].dtype, {in[0].dims[0], Dim::known(sz[0]), Dim::known(sz[1]), Dim::known(k.size / taps)})};
    }
    case OpKind::MatMul:
      return V{TensorType(rt::promote(in[0].dtype, in[1].dtype), matmul_dims(in[0].dims, in[1].dims))};
    case OpKind::Gemm: {
      if (in.size() != 2 && in.size() != 3) fail("gemm needs operands a, b and an optional c");
      size_t rk = static_cast<size_t>(in[0].rank());
      bool batched = rk > 2 && in.size() == 2;
      if ((rk != 2 && !batched) || in[1].rank() != in[0].rank() || in[0].dtype != in[1].dtype ||
          !rt::is_float(in[0].dtype))
        fail("gemm needs float operands of one dtype, rank 2 (or of one rank > 2 without c), got " + in[0].str() +
             " and " + in[1].str());
      bool ta = get<bool>(attrs, "trans_a"), tb = get<bool>(attrs, "trans_b");
      get<double>(attrs, "alpha");
      get<double>(attrs, "beta");
      std::vector<Dim> batch;
      for (size_t i = 0; i + 2 < rk; ++i) batch.push_back(unify(in[0].dims[i], in[1].dims[i], "gemm's batch dims must agree"));
      std::vector<Dim> a(in[0].dims.end() - 2, in[0].dims.end()), b(in[1].dims.end() - 2, in[1].dims.end());
      if (ta) std::swap(a[0], a[1]);
      if (tb) std::swap(b[0], b[1]);
      std::vector<Dim> dims = matmul_dims(a, b);
      dims.insert(dims.begin(), batch.begin(), batch.end());
      if (in.size() == 3) {
        if (in[2].dtype != in[0].dtype || in[2].rank() != 2) fail("gemm's c must be " + TensorType(in[0].dtype, dims).str() + ", got " + in[2].str());
        for (size_t i = 0; i < 2; ++i) dims[i] = unify(dims[i], in[2].dims[i], "gemm's c must have the result's shape");
      }
      return V{TensorType(in[0].dtype, dims)};
    }
    case OpKind::Quantize: {
      require_count(in, 1, "operand x");
      if (!rt::is_float(in[0].dtype)) fail("quantize needs a float operand, got " + in[0].str());
      get<double>(attrs, "scale");
      return V{TensorType(DType::I8, in[0].dims)};
    }
    case OpKind::Dequantize: {
      require_count(in, 2, "operands q and scale");
      if (in[0].dtype != DType::I8) fail("dequantize needs an i8 operand, got " + in[0].str());
      if (in[1].dtype != DType::F32 || in[1].rank() > 1 || (in[1].rank() == 1 && in[0].rank() == 0))
        fail("dequantize's scale must be f32[] or f32[N] (N: the size along attr axis), got " + in[1].str());
      if (in[1].rank() == 1) {
        int64_t axis = get<int64_t>(attrs, "axis");
        if (axis < 0) axis += in[0].rank();
        if (axis < 0 || axis >= in[0].rank()) fail("dequantize's axis is out of range for " + in[0].str());
        unify(in[0].dims[static_cast<size_t>(axis)], in[1].dims[0], "dequantize's scales must match the axis' size");
      }
      return V{TensorType(DType::F32, in[0].dims)};
    }
    case OpKind::QGemm: {
      if (in.size() < 3 || in.size() > 5) fail("qgemm needs operands a, w, ws, an optional c and an optional bias");
      if ((in[0].dtype != DType::F32 && in[0].dtype != DType::I8) || in[0].rank() != 2 || in[1].dtype != DType::I8 ||
          in[1].rank() != 2 || in[2].dtype != DType::F32 || in[2].rank() != 1)
        fail("qgemm needs a f32[M, K] (or i8, quantized), w i8[N, K] and ws f32[N], got " + in[0].str() + ", " + in[1].str() + " and " +
             in[2].str());
      get<double>(attrs, "x_scale");
      get<double>(attrs, "alpha");
      get<double>(attrs, "beta");
      unify(in[0].dims[1], in[1].dims[1], "qgemm's a and w must agree on K");
      unify(in[1].dims[0], in[2].dims[0], "qgemm's ws must have one scale per row of w");
      std::vector<Dim> dims = {in[0].dims[0], in[1].dims[0]};
      // After a, w, ws: c (rank 2) if present, then bias (rank 1) if present.
      size_t next = 3;
      if (in.size() > next && in[next].rank() == 2) {
        if (in[next].dtype != DType::F32) fail("qgemm's c must be f32[M, N], got " + in[next].str());
        for (size_t i = 0; i < 2; ++i) dims[i] = unify(dims[i], in[next].dims[i], "qgemm's c must have the result's shape");
        ++next;
      }
      if (in.size() > next) {
        if (in[next].dtype != DType::F32 || in[next].rank() != 1)
          fail("qgemm's bias must be f32[N], got " + in[next].str());
        dims[1] = unify(dims[1], in[next].dims[0], "qgemm's bias must have one entry per column");
        ++next;
      }
      if (next != in.size()) fail("qgemm's operands after ws must be c f32[M, N] and then bias f32[N]");
      return V{TensorType(DType::F32, dims)};
    }
    case OpKind::Take: {
      require_count(in, 2, "operands x and idx");
      if (rt::is_float(in[1].dtype) || in[1].dtype == DType::Bool) fail("take needs integer indices, got " + in[1].str());
      int64_t axis = checked_axis(get<int64_t>(attrs, "axis"), in[0].rank());
      std::vector<Dim> d(in[0].dims.begin(), in[0].dims.begin() + axis);
      d.insert(d.end(), in[1].dims.begin(), in[1].dims.end());
      d.insert(d.end(), in[0].dims.begin() + axis + 1, in[0].dims.end());
      return V{TensorType(in[0].dtype, d)};
    }
    case OpKind::IndexAdd: {
      require_count(in, 3, "operands base, idx and src");
      if (!rt::is_float(in[0].dtype)) fail("index_add needs a float base, got " + in[0].str());
      checked_axis(get<int64_t>(attrs, "axis"), in[0].rank());
      return V{in[0]};
    }
    case OpKind::Index:
      require_count(in, 1, "a tensor operand");
      return V{TensorType(in[0].dtype, index_dims(in, 1))};
    case OpKind::DynSlice:
    case OpKind::DynSliceUpdate: {
      size_t first = kind == OpKind::DynSlice ? 1 : 2;
      require_count(in, first, kind == OpKind::DynSlice ? "a tensor operand" : "operands x and v");
      const IntList& dyn = get<IntList>(attrs, "dynamic");
      if (dyn.size() != in[0].dims.size()) fail("attr dynamic needs one entry per axis");
      int64_t ndyn = 0;
      for (int64_t d : dyn) ndyn += d != 0;
      if (static_cast<int64_t>(in.size()) != static_cast<int64_t>(first) + 2 * ndyn)
        fail("a start and a stop operand per dynamic axis");
      for (size_t i = first; i < in.size(); ++i)
        if (!in[i].is_scalar() || !rt::is_integer(in[i].dtype)) fail("slice bounds must be integer scalars");
      if (kind == OpKind::DynSliceUpdate) return V{in[0]};
      std::vector<Dim> dims = slice_dims(in[0].dims, attrs);
      for (size_t i = 0; i < dims.size(); ++i)
        if (dyn[i]) dims[i] = Dim::symbolic(kAnyDim);
      return V{TensorType(in[0].dtype, dims)};
    }
    case OpKind::Update: {
      require_count(in, 2, "operands x and v");
      std::vector<TensorType> xs_and_indices{in[0]};
      xs_and_indices.insert(xs_and_indices.end(), in.begin() + 2, in.end());
      check_broadcast_to(in[1].dims, index_dims(xs_and_indices, 1));
      return V{in[0]};
    }
    case OpKind::Print:
      if (count_holes(get<std::string>(attrs, "format")) != static_cast<int64_t>(in.size()))
        fail("the format needs one {} per operand (" + std::to_string(in.size()) + ")");
      return V{};
    case OpKind::Assert:
      // assert(cond, values...): with values, the message is a format with one {} per value.
      if (in.empty()) fail("needs a condition");
      if (in.size() > 1 && count_holes(get<std::string>(attrs, "message")) != static_cast<int64_t>(in.size()) - 1)
        fail("the message needs one {} per value (" + std::to_string(in.size() - 1) + ")");
      get<std::string>(attrs, "message");
      if (in[0].dtype != DType::Bool || !in[0].is_scalar()) fail("condition must be a bool scalar, got " + in[0].str());
      return V{};
    case OpKind::Yield:
    case OpKind::Return:
      return V{};
    case OpKind::StackNew:
      return V{TensorType::scalar(DType::I64)};
    case OpKind::StackPush:
      require_integer_scalar(in[0], "stack handle");
      return V{};
    case OpKind::StackSize:
      require_integer_scalar(in[0], "stack handle");
      return V{TensorType::scalar(DType::I64)};
    default:
      return std::nullopt;
  }
}

void check_declared_types(OpKind kind, const std::vector<TensorType>& in, const AttrMap& attrs,
                          const std::vector<TensorType>& out) {
  switch (kind) {
    case OpKind::Constant: {
      const rt::Tensor& v = get<rt::Tensor>(attrs, "value");
      if (!(TensorType::of(v.dtype(), v.shape()) == out[0]))
        fail("the value is " + v.type_str() + " but the result is " + out[0].str());
      return;
    }
    case OpKind::Cast:
      if (in[0].dims != out[0].dims) fail("cast keeps the shape: " + in[0].str() + " vs " + out[0].str());
      return;
    case OpKind::Iota:
      checked_axis(get<int64_t>(attrs, "axis"), out[0].rank());
      if (out[0].dtype == DType::Bool) fail("iota needs a numeric dtype");
      return;
    case OpKind::Arange:
      for (const TensorType& t : in)
        if (!t.is_scalar() || t.dtype == DType::Bool) fail("arange takes numeric scalar start, stop and step");
      if (out[0].rank() != 1 || out[0].dtype == DType::Bool) fail("arange gives a numeric rank-1 tensor");
      return;
    case OpKind::BroadcastDyn:
    case OpKind::ReshapeDyn: {
      require_count(in, 1, "a tensor operand");
      if (in[0].dtype != out[0].dtype) fail("the dtype must stay " + std::string(rt::dtype_name(in[0].dtype)));
      const IntList& shape = get<IntList>(attrs, "shape");
      if (static_cast<int64_t>(shape.size()) != out[0].rank()) fail("attr shape needs one entry per result dim");
      size_t ops = 1;
      for (size_t i = 0; i < shape.size(); ++i) {
        if (shape[i] == -2) ++ops;
        else if (shape[i] >= 0 && !(out[0].dims[i] == Dim::known(shape[i]))) fail("the result type disagrees with attr shape");
        else if (shape[i] < -2 || (shape[i] == -1 && kind == OpKind::BroadcastDyn)) fail("bad entry in attr shape");
      }
      if (in.size() != ops) fail("one operand per entry -2 of attr shape");
      for (size_t i = 1; i < in.size(); ++i) require_integer_scalar(in[i], "size");
      return;
    }
    case OpKind::BroadcastTo:
    case OpKind::Reshape:
      if (in[0].dtype != out[0].dtype) fail("the dtype must stay " + std::string(rt::dtype_name(in[0].dtype)));
      if (kind == OpKind::BroadcastTo) check_broadcast_to(in[0].dims, out[0].dims);
      else check_reshape(in[0].dims, out[0].dims);
      return;
    case OpKind::Random: {
      const std::string& dist = get<std::string>(attrs, "dist");
      if (dist == "uniform" || dist == "normal") {
        if (!in.empty()) fail(dist + " takes no operands");
        if (!rt::is_float(out[0].dtype)) fail(dist + " gives a float dtype, not " + out[0].str());
      } else if (dist == "int") {
        if (in.size() != 2) fail("int takes operands lo and hi");
        require_integer_scalar(in[0], "lo");
        require_integer_scalar(in[1], "hi");
        if (out[0].dtype != DType::I64) fail("int gives i64, not " + out[0].str());
      } else {
        fail("unknown distribution '" + dist + "' (uniform, normal, int)");
      }
      return;
    }
    case OpKind::CallRuntime:
      get<std::string>(attrs, "callee");
      return;
    case OpKind::StackPop:
      require_integer_scalar(in[0], "stack handle");
      return;
    default:
      return;  // cond and while: region signatures are the verifier's
  }
}

bool needs_run_time_check(const Op& op) {
  t_run_time_checks = 0;
  try {
    check_op_types(op);
  } catch (const ShapeError&) {
    return true;
  }
  return t_run_time_checks > 0;
}

void check_op_types(const Op& op) {
  std::vector<TensorType> in, out;
  for (Value* v : op.operands()) in.push_back(v->type);
  for (Value* v : op.results()) out.push_back(v->type);
  if (auto inferred = infer_result_types(op.kind(), in, op.attrs)) {
    if (inferred->size() != out.size()) fail("expected " + std::to_string(inferred->size()) + " results");
    for (size_t i = 0; i < out.size(); ++i) {
      if (!type_matches((*inferred)[i], out[i])) {
        TensorType shown = (*inferred)[i];
        for (Dim& d : shown.dims)
          if (is_any_dim(d)) d = Dim::symbolic("?");
        fail("result type " + out[i].str() + " does not match the inferred " + shown.str());
      }
    }
    return;
  }
  check_declared_types(op.kind(), in, op.attrs, out);
}

}  // namespace tdl::ir
