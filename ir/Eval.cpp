#include "ir/Eval.h"
#include "ir/Rewrite.h"

#include <fmt/format.h>

#include "ir/ShapeInference.h"
#include "runtime/Create.h"
#include "runtime/Elementwise.h"
#include "runtime/Index.h"
#include "runtime/Matmul.h"
#include "runtime/Quant.h"
#include "runtime/Reduce.h"
#include "runtime/Conv.h"
#include "runtime/Scan.h"
#include "runtime/ShapeOps.h"

namespace tdl::ir {

namespace {

rt::Tensor iota(const rt::Shape& shape, int64_t axis, DType dtype) {
  rt::Shape line(shape.size(), 1);
  line[axis] = shape[axis];
  rt::Tensor r = rt::reshape(rt::cast(rt::arange_int(0, shape[axis]), dtype), line);
  return rt::broadcast_to(r, shape);
}

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

std::optional<std::vector<rt::Tensor>> evaluate(const Op& op, const std::vector<rt::Tensor>& in) {
  using V = std::vector<rt::Tensor>;
  if (auto b = as_binary(op.kind())) return V{rt::binary(*b, in[0], in[1])};
  if (auto u = as_unary(op.kind())) return V{rt::unary(*u, in[0])};
  std::optional<rt::Shape> shape;
  if (op.num_results() == 1) shape = op.result()->type.static_shape();
  switch (op.kind()) {
    case OpKind::Constant: return V{op.tensor_attr("value")};
    case OpKind::Cast: return V{rt::cast(in[0], op.result()->type.dtype)};
    case OpKind::Select: return V{rt::where(in[0], in[1], in[2])};
    case OpKind::Dim: return V{rt::Tensor::scalar(in[0].dim(op.int_attr("axis")))};
    case OpKind::Iota:
      if (!shape) return std::nullopt;
      return V{iota(*shape, op.int_attr("axis"), op.result()->type.dtype)};
    case OpKind::BroadcastTo:
      if (!shape) return std::nullopt;
      return V{rt::broadcast_to(in[0], *shape)};
    case OpKind::Reshape:
      if (!shape) return std::nullopt;
      return V{rt::reshape(in[0], *shape)};
    case OpKind::BroadcastDyn:
    case OpKind::ReshapeDyn: {
      rt::Shape s = op.ints_attr("shape");
      size_t k = 1;
      for (int64_t& d : s)
        if (d == -2) d = in.at(k++).scalar_as_int64();
      if (op.kind() == OpKind::ReshapeDyn) return V{rt::reshape(in[0], s)};
      for (int64_t d : s)
        if (d < 0) throw rt::Error(fmt::format("negative dimension {}", d));
      return V{rt::broadcast_to(in[0], s)};
    }
    case OpKind::Arange: {
      DType dt = op.result()->type.dtype;
      bool ints = !rt::is_float(in[0].dtype()) && !rt::is_float(in[1].dtype()) && !rt::is_float(in[2].dtype());
      if (ints && !rt::is_float(dt))
        return V{rt::cast(rt::arange_int(in[0].scalar_as_int64(), in[1].scalar_as_int64(), in[2].scalar_as_int64()), dt)};
      return V{rt::arange(in[0].item_double(0), in[1].item_double(0), in[2].item_double(0), rt::is_float(dt) ? dt : DType::F32)};
    }
    case OpKind::Transpose: return V{rt::transpose(in[0], op.ints_attr("perm"))};
    case OpKind::Concat: return V{rt::concat(in, op.int_attr("axis"))};
    case OpKind::Slice: return V{slice(op, in[0])};
    case OpKind::Reduce: {
      auto kind = reduce_kind_from_name(op.str_attr("kind"));
      if (!kind) return std::nullopt;
      return V{rt::reduce(*kind, in[0], op.ints_attr("axes"), op.bool_attr("keepdims"))};
    }
    case OpKind::ArgMax:
    case OpKind::ArgMin: {
      auto kind = op.kind() == OpKind::ArgMax ? rt::ReduceOp::ArgMax : rt::ReduceOp::ArgMin;
      return V{rt::reduce(kind, in[0], IntList{op.int_attr("axis")}, op.bool_attr("keepdims"))};
    }
    case OpKind::Im2col: {
      IntList w = op.ints_attr("window");
      return V{rt::im2col(in[0], window2d(w), attr_or(op, "pad", 0.0))};
    }
    case OpKind::Col2im: {
      IntList w = op.ints_attr("window"), sz = op.ints_attr("size");
      return V{rt::col2im(in[0], sz.at(0), sz.at(1), window2d(w))};
    }
    case OpKind::ConvNhwc: {
      IntList w = op.ints_attr("window");
      const std::string* grad = op.attr_as<std::string>("grad");
      if (grad && *grad == "input") {
        IntList sz = op.ints_attr("size");
        return V{rt::conv_nhwc_adjoint(in[0], in[1], window2d(w), sz.at(0), sz.at(1))};
      }
      if (grad && *grad == "filter") return V{rt::conv_nhwc_filter_grad(in[0], in[1], window2d(w))};
      const bool* relu = op.attr_as<bool>("relu");
      return V{rt::conv_nhwc(in[0], in[1], window2d(w), in.size() > 2 ? std::optional<rt::Tensor>(in[2]) : std::nullopt,
                             relu && *relu)};
    }
    case OpKind::Argsort: return V{rt::argsort(in[0], op.int_attr("axis"), op.bool_attr("descending"))};
    case OpKind::Scan:
      return V{rt::scan(in[0], op.int_attr("axis"), op.str_attr("kind") == "prod", op.bool_attr("reverse"))};
    case OpKind::MatMul: return V{rt::matmul(in[0], in[1])};
    case OpKind::Gemm:
      return V{rt::gemm(in[0], in[1], in.size() > 2 ? std::optional<rt::Tensor>(in[2]) : std::nullopt,
                        op.bool_attr("trans_a"), op.bool_attr("trans_b"),
                        attr_or(op, "alpha", 1.0),
                        attr_or(op, "beta", 0.0))};
    case OpKind::Quantize: return V{rt::quantize_i8(in[0], *op.attr_as<double>("scale"))};
    case OpKind::Dequantize:
      return V{rt::dequantize_i8(in[0], in[1], op.attr_as<int64_t>("axis") ? *op.attr_as<int64_t>("axis") : -1)};
    case OpKind::QGemm: {
      // a, w, ws, then c (rank 2) and bias (rank 1) when present
      std::optional<rt::Tensor> c, bias;
      size_t next = 3;
      if (in.size() > next && in[next].rank() == 2) c = in[next++];
      if (in.size() > next) bias = in[next];
      return V{rt::qgemm(in[0], in[1], in[2], *op.attr_as<double>("x_scale"), c, *op.attr_as<double>("alpha"),
                         *op.attr_as<double>("beta"), bias, op.attr_as<bool>("relu") && *op.attr_as<bool>("relu"))};
    }
    case OpKind::Index: return V{rt::get_index(in[0], indices(in, 1))};
    case OpKind::Take: return V{rt::take(in[0], in[1], op.int_attr("axis"))};
    case OpKind::IndexAdd: return V{rt::index_add(in[0], in[1], in[2], op.int_attr("axis"))};
    case OpKind::DynSlice: return V{rt::get_index(in[0], dynSlice(op, in, 1))};
    case OpKind::DynSliceUpdate:
    case OpKind::Update: {
      rt::Tensor x = in[0];
      rt::set_index(x, update_spec(op, in), in[1]);
      return V{x};
    }
    default: return std::nullopt;
  }
}

rt::IndexSpec update_spec(const Op& op, const std::vector<rt::Tensor>& in) {
  return op.kind() == OpKind::DynSliceUpdate ? dynSlice(op, in, 2) : indices(in, 2);
}

}  // namespace tdl::ir
