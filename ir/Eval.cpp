#include "ir/Eval.h"
#include "ir/Rewrite.h"

#include <fmt/format.h>

#include "ir/ShapeInference.h"
#include "runtime/Create.h"
#include "runtime/Elementwise.h"
#include "runtime/Index.h"
#include "runtime/Kernels.h"
#include "runtime/Matmul.h"
#include "runtime/Quant.h"
#include "runtime/Reduce.h"
#include "runtime/Conv.h"
#include "runtime/Scan.h"
#include "runtime/ShapeOps.h"

namespace tdl::ir {

namespace {

rt::Window2d window2d(const IntList& w) {
  if (w.size() != 10) throw rt::Error("im2col/col2im: a window of 10 ints");
  std::array<int64_t, 10> a{};
  for (size_t i = 0; i < 10; ++i) a[i] = w[i];
  return rt::Window2d::from(a);
}

rt::Tensor slice(const Op& op, const rt::Tensor& x) {
  rt::IndexSpec spec;
  const IntList &start = op.ints_attr("start"), &stop = op.ints_attr("stop"), &step = op.ints_attr("step");
  for (size_t i = 0; i < start.size(); ++i) spec.push_back(rt::IndexItem::slice(start[i], stop[i], step[i]));
  return rt::get_index(x, spec);
}

// dyn_slice / dyn_slice_update: the slice of each axis, bounds from operands from `first` on
// for the dynamic axes.
rt::IndexSpec dynSlice(const Op& op, const std::vector<rt::Tensor>& in, size_t first) {
  rt::IndexSpec spec;
  const IntList &start = op.ints_attr("start"), &stop = op.ints_attr("stop"), &step = op.ints_attr("step"),
                &dyn = op.ints_attr("dynamic");
  size_t k = first;
  for (size_t i = 0; i < start.size(); ++i) {
    if (dyn[i]) {
      int64_t a = in[k].scalar_as_int64(), b = in[k + 1].scalar_as_int64();
      k += 2;
      spec.push_back(rt::IndexItem::slice(a, b, step[i]));
    } else {
      spec.push_back(rt::IndexItem::slice(start[i], stop[i], step[i]));
    }
  }
  return spec;
}

rt::IndexSpec indices(const std::vector<rt::Tensor>& in, size_t first) {
  rt::IndexSpec spec;
  for (size_t i = first; i < in.size(); ++i) spec.push_back(rt::IndexItem::at(in[i].scalar_as_int64()));
  return spec;
}

}  // namespace

using V = std::vector<rt::Tensor>;

namespace {

std::optional<rt::Shape> staticShape(const Op& op) {
  if (op.num_results() != 1) return std::nullopt;
  return op.result()->type.static_shape();
}

// The evaluators, one per op (the kernels of the op table, runtime/Kernels.h): nullopt
// where the op cannot be evaluated here (a symbolic result shape, an unknown kind).
std::optional<V> k_Constant(const Op& op, const V&) { return V{op.tensor_attr("value")}; }
std::optional<V> k_Cast(const Op& op, const V& in) { return V{rt::cast(in[0], op.result()->type.dtype)}; }
std::optional<V> k_Select(const Op&, const V& in) { return V{rt::where(in[0], in[1], in[2])}; }
std::optional<V> k_Dim(const Op& op, const V& in) { return V{rt::Tensor::scalar(in[0].dim(op.int_attr("axis")))}; }
std::optional<V> k_Iota(const Op& op, const V&) {
  auto shape = staticShape(op);
  if (!shape) return std::nullopt;
  return V{iota_tensor(*shape, op.int_attr("axis"), op.result()->type.dtype)};
}
std::optional<V> k_BroadcastTo(const Op& op, const V& in) {
  auto shape = staticShape(op);
  if (!shape) return std::nullopt;
  return V{rt::broadcast_to(in[0], *shape)};
}
std::optional<V> k_Reshape(const Op& op, const V& in) {
  auto shape = staticShape(op);
  if (!shape) return std::nullopt;
  return V{rt::reshape(in[0], *shape)};
}
// broadcast_dyn / reshape_dyn: the shape attr with its -2 entries from the operands.
rt::Shape dynShape(const Op& op, const V& in) {
  rt::Shape s = op.ints_attr("shape");
  size_t k = 1;
  for (int64_t& d : s)
    if (d == -2) d = in.at(k++).scalar_as_int64();
  return s;
}
std::optional<V> k_ReshapeDyn(const Op& op, const V& in) { return V{rt::reshape(in[0], dynShape(op, in))}; }
std::optional<V> k_BroadcastDyn(const Op& op, const V& in) {
  rt::Shape s = dynShape(op, in);
  for (int64_t d : s)
    if (d < 0) throw rt::Error(fmt::format("negative dimension {}", d));
  return V{rt::broadcast_to(in[0], s)};
}
std::optional<V> k_Arange(const Op& op, const V& in) {
  return V{rt::arange_of(in[0], in[1], in[2], op.result()->type.dtype)};
}
std::optional<V> k_Transpose(const Op& op, const V& in) { return V{rt::transpose(in[0], op.ints_attr("perm"))}; }
std::optional<V> k_Concat(const Op& op, const V& in) { return V{rt::concat(in, op.int_attr("axis"))}; }
std::optional<V> k_Slice(const Op& op, const V& in) { return V{slice(op, in[0])}; }
std::optional<V> k_Reduce(const Op& op, const V& in) {
  auto kind = reduce_kind_from_name(op.str_attr("kind"));
  if (!kind) return std::nullopt;
  return V{rt::reduce(*kind, in[0], op.ints_attr("axes"), op.bool_attr("keepdims"))};
}
std::optional<V> argExtreme(rt::ReduceOp kind, const Op& op, const V& in) {
  return V{rt::reduce(kind, in[0], IntList{op.int_attr("axis")}, op.bool_attr("keepdims"))};
}
std::optional<V> k_ArgMax(const Op& op, const V& in) { return argExtreme(rt::ReduceOp::ArgMax, op, in); }
std::optional<V> k_ArgMin(const Op& op, const V& in) { return argExtreme(rt::ReduceOp::ArgMin, op, in); }
std::optional<V> k_Im2col(const Op& op, const V& in) {
  return V{rt::im2col(in[0], window2d(op.ints_attr("window")), attr_or(op, "pad", 0.0))};
}
std::optional<V> k_Col2im(const Op& op, const V& in) {
  const IntList& sz = op.ints_attr("size");
  return V{rt::col2im(in[0], sz.at(0), sz.at(1), window2d(op.ints_attr("window")))};
}
std::optional<V> k_ConvNhwc(const Op& op, const V& in) {
  rt::Window2d w = window2d(op.ints_attr("window"));
  const std::string* grad = op.attr_as<std::string>("grad");
  if (grad && *grad == "input") {
    const IntList& sz = op.ints_attr("size");
    return V{rt::conv_nhwc_adjoint(in[0], in[1], w, sz.at(0), sz.at(1))};
  }
  if (grad && *grad == "filter") return V{rt::conv_nhwc_filter_grad(in[0], in[1], w)};
  const bool* relu = op.attr_as<bool>("relu");
  return V{rt::conv_nhwc(in[0], in[1], w, in.size() > 2 ? std::optional<rt::Tensor>(in[2]) : std::nullopt,
                         relu && *relu)};
}
std::optional<V> k_Argsort(const Op& op, const V& in) {
  return V{rt::argsort(in[0], op.int_attr("axis"), op.bool_attr("descending"))};
}
std::optional<V> k_Scan(const Op& op, const V& in) {
  return V{rt::scan(in[0], op.int_attr("axis"), op.str_attr("kind") == "prod", op.bool_attr("reverse"))};
}
std::optional<V> k_MatMul(const Op&, const V& in) { return V{rt::matmul(in[0], in[1])}; }
std::optional<V> k_Gemm(const Op& op, const V& in) {
  return V{rt::gemm(in[0], in[1], in.size() > 2 ? std::optional<rt::Tensor>(in[2]) : std::nullopt,
                    op.bool_attr("trans_a"), op.bool_attr("trans_b"), attr_or(op, "alpha", 1.0),
                    attr_or(op, "beta", 0.0))};
}
std::optional<V> k_Quantize(const Op& op, const V& in) {
  return V{rt::quantize_i8(in[0], *op.attr_as<double>("scale"))};
}
std::optional<V> k_Dequantize(const Op& op, const V& in) {
  return V{rt::dequantize_i8(in[0], in[1], op.attr_as<int64_t>("axis") ? *op.attr_as<int64_t>("axis") : -1)};
}
std::optional<V> k_QGemm(const Op& op, const V& in) {
  // a, w, ws, then c (rank 2) and bias (rank 1) when present
  std::optional<rt::Tensor> c, bias;
  size_t next = 3;
  if (in.size() > next && in[next].rank() == 2) c = in[next++];
  if (in.size() > next) bias = in[next];
  return V{rt::qgemm(in[0], in[1], in[2], *op.attr_as<double>("x_scale"), c, *op.attr_as<double>("alpha"),
                     *op.attr_as<double>("beta"), bias, op.attr_as<bool>("relu") && *op.attr_as<bool>("relu"))};
}
std::optional<V> k_Index(const Op&, const V& in) { return V{rt::get_index(in[0], indices(in, 1))}; }
std::optional<V> k_Take(const Op& op, const V& in) { return V{rt::take(in[0], in[1], op.int_attr("axis"))}; }
std::optional<V> k_IndexAdd(const Op& op, const V& in) {
  return V{rt::index_add(in[0], in[1], in[2], op.int_attr("axis"))};
}
std::optional<V> k_DynSlice(const Op& op, const V& in) { return V{rt::get_index(in[0], dynSlice(op, in, 1))}; }
std::optional<V> k_Update(const Op& op, const V& in) {
  rt::Tensor x = in[0];
  rt::set_index(x, update_spec(op, in), in[1]);
  return V{x};
}
std::optional<V> k_DynSliceUpdate(const Op& op, const V& in) { return k_Update(op, in); }

}  // namespace

// The kernels by name, for the op tables (EvalTable.cpp, and a minimal runtime's).
extern "C" {
#define TDL_EVAL_KERNEL(e)                                                 \
  int32_t tdlk_op_##e(const Op* op, const V* in, V* out) {             \
    std::optional<V> r = k_##e(*op, *in);                                  \
    if (!r) return 0;                                                      \
    *out = std::move(*r);                                                  \
    return 1;                                                              \
  }
TDL_EVAL_OPS(TDL_EVAL_KERNEL)
#undef TDL_EVAL_KERNEL
}

bool has_evaluator(OpKind kind) {
  switch (kind) {
#define TDL_EVAL_CASE(e) case OpKind::e:
    TDL_EVAL_OPS(TDL_EVAL_CASE)
#undef TDL_EVAL_CASE
    return true;
    default: return as_binary(kind).has_value() || as_unary(kind).has_value();
  }
}

std::optional<V> evaluate(const Op& op, const V& in) {
  if (auto b = as_binary(op.kind())) return V{rt::binary(*b, in[0], in[1])};
  if (auto u = as_unary(op.kind())) return V{rt::unary(*u, in[0])};
  if (!has_evaluator(op.kind())) return std::nullopt;
  tdlk_fn f = tdlk_op_kernel(static_cast<int32_t>(op.kind()));
  if (!f) throw rt::Error(rt::missing_kernel_message(fmt::format("op '{}'", op.name())));
  V out;
  if (!reinterpret_cast<EvalKernel>(f)(&op, &in, &out)) return std::nullopt;
  return out;
}

rt::Tensor iota_tensor(const rt::Shape& shape, int64_t axis, DType dtype) {
  const auto a = static_cast<size_t>(axis);
  rt::Shape line(shape.size(), 1);
  line[a] = shape[a];
  rt::Tensor r = rt::reshape(rt::cast(rt::arange_int(0, shape[a]), dtype), line);
  return rt::broadcast_to(r, shape);
}

rt::IndexSpec update_spec(const Op& op, const std::vector<rt::Tensor>& in) {
  return op.kind() == OpKind::DynSliceUpdate ? dynSlice(op, in, 2) : indices(in, 2);
}

}  // namespace tdl::ir
