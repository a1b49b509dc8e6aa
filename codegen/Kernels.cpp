// The host side of GPU kernels (Kernels.h): launch plans and the kernel list as text.
#include "codegen/Kernels.h"

#include <fmt/format.h>

#include <cstring>
#include <sstream>

#include "ir/Eval.h"
#include "ir/Pass.h"
#include "runtime/Index.h"
#include "runtime/Shape.h"

namespace tdl::codegen {

ir::FusedOperand ptxOperandKind(const ir::TensorType& x, const ir::TensorType& r) {
  ir::FusedOperand k = ir::fused_operand_kind(x, r);
  return k == ir::FusedOperand::Strided ? ir::FusedOperand::None : k;
}

namespace {

// The reduced run of axes of a reduce op on x: [lo, hi).
std::pair<size_t, size_t> reducedRun(const ir::Op& op, size_t rank) {
  std::vector<bool> mask(rank, false);
  ir::IntList axes = op.attr("axes") ? op.ints_attr("axes") : ir::IntList{op.int_attr("axis")};
  for (int64_t a : axes) mask[static_cast<size_t>(a < 0 ? a + static_cast<int64_t>(rank) : a)] = true;
  size_t lo = 0, hi = rank;
  while (lo < rank && !mask[lo]) ++lo;
  while (hi > lo && !mask[hi - 1]) --hi;
  return {lo, hi};
}

int64_t product(const rt::Shape& s, size_t from, size_t to) {
  int64_t n = 1;
  for (size_t i = from; i < to; ++i) n *= s[i];
  return n;
}

template <class T> std::vector<unsigned char> bytesOf(T v) {
  std::vector<unsigned char> b(sizeof(T));
  std::memcpy(b.data(), &v, sizeof(T));
  return b;
}

unsigned gridFor(int64_t work, unsigned per, unsigned maxGrid) {
  int64_t g = (work + per - 1) / per;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(g, maxGrid)));
}

}  // namespace

KernelLaunch planLaunch(const PtxKernel& k, uint64_t out, const std::vector<uint64_t>& bufs,
                        const std::vector<rt::Tensor>& operands, const rt::Shape& resultShape, unsigned maxGrid,
                        unsigned block, uint64_t errFlag) {
  KernelLaunch l;
  l.args.push_back(bytesOf(out));
  if (k.kind == PtxKernel::Insert) {
    InsertView w = insertView(*k.op, operands);
    return planView(out, bufs.at(1), w.count, w.offset, {&w.dims, &w.outStrides, &w.vStrides}, maxGrid, block);
  }
  if (k.kind == PtxKernel::Copy) {
    CopyView v = copyView(*k.op, operands, resultShape);
    return planView(out, bufs.at(0), rt::numel_of(v.dims), v.offset, {&v.dims, &v.strides}, maxGrid, block);
  }
  if (k.kind == PtxKernel::Reduce || k.kind == PtxKernel::ReduceStrided || k.kind == PtxKernel::ArgReduce) {
    const rt::Shape& xs = operands.at(0).shape();
    auto [lo, hi] = reducedRun(*k.op, xs.size());
    int64_t outer = product(xs, 0, lo), red = product(xs, lo, hi), inner = product(xs, hi, xs.size());
    l.args.push_back(bytesOf(bufs.at(0)));
    std::string kind = k.kind == PtxKernel::ArgReduce ? "arg" : k.op->str_attr("kind");
    l.skip = outer * inner == 0 || (red == 0 && (kind == "max" || kind == "min" || kind == "arg"));
    if (k.kind == PtxKernel::Reduce) {
      bool fusedRows = false;
      for (size_t j = 1; k.op->kind() == ir::OpKind::FusedReduce && j < operands.size(); ++j) {
        ir::FusedOperand fk = ptxOperandKind(k.op->operand(j)->type, k.op->operand(0)->type);
        fusedRows = fusedRows || fk == ir::FusedOperand::Row || fk == ir::FusedOperand::Col;
        if (fk == ir::FusedOperand::Scalar) {
          const auto* p = static_cast<const unsigned char*>(operands[j].raw());
          l.args.emplace_back(p, p + rt::itemsize(operands[j].dtype()));
        } else {
          l.args.push_back(bytesOf(bufs.at(j)));
        }
      }
      l.args.push_back(bytesOf(outer));
      l.args.push_back(bytesOf(red));
      if (fusedRows) l.args.push_back(bytesOf(xs.empty() ? int64_t{1} : xs.back()));
      l.block = kReduceBlock;
      l.grid = gridFor(outer, 1, maxGrid);
    } else {
      l.args.push_back(bytesOf(outer));
      l.args.push_back(bytesOf(red));
      l.args.push_back(bytesOf(inner));
      l.block = block;
      l.grid = gridFor(outer * inner, block, maxGrid);
    }
    return l;
  }
  for (size_t j = 0; j < operands.size(); ++j) {
    const rt::Tensor& t = operands[j];
    if (k.op->operand(j)->type.is_scalar()) {
      const auto* p = static_cast<const unsigned char*>(t.raw());
      l.args.emplace_back(p, p + rt::itemsize(t.dtype()));  // bool: one byte, as the kernel's i8
    } else {
      l.args.push_back(bytesOf(bufs.at(j)));
    }
  }
  int64_t n = product(resultShape, 0, resultShape.size());
  l.args.push_back(bytesOf(n));
  bool rows = false, general = false;
  const ir::TensorType& rt = k.op->result()->type;
  for (const ir::Value* v : k.op->operands()) {
    ir::FusedOperand fk = ptxOperandKind(v->type, rt);
    rows = rows || fk == ir::FusedOperand::Row || fk == ir::FusedOperand::Col;
    general = general || fk == ir::FusedOperand::None;
  }
  if (rows) l.args.push_back(bytesOf(resultShape.empty() ? int64_t{1} : resultShape.back()));
  if (general) {
    size_t rank = resultShape.size();
    for (int64_t d : resultShape) l.args.push_back(bytesOf(d));
    for (size_t j = 0; j < operands.size(); ++j) {
      if (ptxOperandKind(k.op->operand(j)->type, rt) != ir::FusedOperand::None) continue;
      const rt::Shape& xs = operands[j].shape();
      std::vector<int64_t> strides(rank, 0);
      int64_t st = 1;
      for (size_t a = xs.size(); a-- > 0;) {
        size_t ra = rank - xs.size() + a;  // aligned to the right, as NumPy does
        strides[ra] = xs[a] == 1 && resultShape[ra] != 1 ? 0 : st;
        st *= xs[a];
      }
      for (int64_t v : strides) l.args.push_back(bytesOf(v));
    }
  }
  if (k.mayFail) l.args.push_back(bytesOf(errFlag));
  l.skip = n == 0;
  l.block = block;
  l.grid = gridFor(n, block, maxGrid);
  return l;
}

KernelLaunch planView(uint64_t out, uint64_t in, int64_t n, int64_t offset,
                      std::initializer_list<const std::vector<int64_t>*> arrays, unsigned maxGrid, unsigned block) {
  KernelLaunch l;
  for (uint64_t p : {out, in}) l.args.push_back(bytesOf(p));
  l.args.push_back(bytesOf(n));
  l.args.push_back(bytesOf(offset));
  for (const std::vector<int64_t>* a : arrays)
    for (int64_t d : *a) l.args.push_back(bytesOf(d));
  l.skip = n == 0;
  l.block = block;
  l.grid = gridFor(n, block, maxGrid);
  return l;
}

CopyView copyView(const ir::Op& op, const std::vector<rt::Tensor>& operands, const rt::Shape& target) {
  const rt::Shape& in = operands.at(0).shape();
  size_t rank = in.size();
  std::vector<int64_t> st = rt::strides_of(in);
  CopyView v;
  switch (op.kind()) {
    case ir::OpKind::Transpose: {
      const ir::IntList& perm = op.ints_attr("perm");
      for (int64_t p : perm) {
        v.dims.push_back(in.at(static_cast<size_t>(p)));
        v.strides.push_back(st.at(static_cast<size_t>(p)));
      }
      return v;
    }
    case ir::OpKind::BroadcastTo: {
      rt::check_broadcast_to(in, target);
      size_t lead = target.size() - rank;
      for (size_t a = 0; a < target.size(); ++a) {
        v.dims.push_back(target[a]);
        v.strides.push_back(a < lead || in[a - lead] == 1 ? 0 : st[a - lead]);
      }
      return v;
    }
    case ir::OpKind::Slice:
    case ir::OpKind::Index: {  // x[start:stop:step, ...] or x[i0, i1, ...]: the kept axes
      rt::IndexSpec spec;
      if (op.kind() == ir::OpKind::Slice) {
        const ir::IntList &start = op.ints_attr("start"), &stop = op.ints_attr("stop"), &step = op.ints_attr("step");
        for (size_t a = 0; a < start.size(); ++a) spec.push_back(rt::IndexItem::slice(start[a], stop[a], step[a]));
      } else {
        for (size_t j = 1; j < operands.size(); ++j) spec.push_back(rt::IndexItem::at(operands[j].scalar_as_int64()));
      }
      rt::IndexRegion reg = rt::index_region(in, spec);
      for (size_t a = 0; a < rank; ++a) {
        const rt::AxisRange& r = reg.ranges[a];
        v.offset += r.start * st[a];  // (0 for an empty range)
        if (!r.keep) continue;
        v.dims.push_back(r.count);
        v.strides.push_back(r.step * st[a]);
      }
      return v;
    }
    default: throw rt::InternalError(std::string("copyView of ") + std::string(op.name()));
  }
}

InsertView insertView(const ir::Op& op, const std::vector<rt::Tensor>& in) {
  const rt::Shape& xs = in.at(0).shape();
  const rt::Shape& vs = in.at(1).shape();
  rt::IndexRegion reg = rt::index_region(xs, ir::update_spec(op, in));
  rt::check_broadcast_to(vs, reg.shape);
  size_t rank = xs.size();
  std::vector<int64_t> st = rt::strides_of(xs), vst = rt::strides_of(vs);
  InsertView w;
  w.count = reg.numel;
  int64_t kept = static_cast<int64_t>(reg.shape.size()), vr = static_cast<int64_t>(vs.size()), j = 0;
  for (size_t a = 0; a < rank; ++a) {
    const rt::AxisRange& r = reg.ranges[a];
    w.dims.push_back(r.count);
    w.outStrides.push_back(r.step * st[a]);
    if (w.count > 0) w.offset += r.start * st[a];
    int64_t va = r.keep ? j++ - (kept - vr) : -1;  // v is aligned right to the kept axes
    w.vStrides.push_back(va < 0 || vs[static_cast<size_t>(va)] == 1 ? 0 : vst[static_cast<size_t>(va)]);
  }
  return w;
}

std::vector<const ir::Op*> opsInOrder(const ir::Function& fn) {
  std::vector<const ir::Op*> ops;
  ir::walk(const_cast<ir::Function&>(fn).entry(), [&](ir::Op& op) { ops.push_back(&op); });
  return ops;
}

std::string serializeKernels(const std::vector<PtxKernel>& ks, const ir::Function& fn) {
  std::vector<const ir::Op*> ops = opsInOrder(fn);
  std::string s;
  for (const PtxKernel& k : ks) {
    size_t at = 0;
    while (at < ops.size() && ops[at] != k.op) ++at;
    s += fmt::format("{} {} {} {}\n", k.name, static_cast<int>(k.kind), at, k.mayFail ? 1 : 0);
  }
  return s;
}

bool restoreKernels(std::vector<PtxKernel>& ks, const std::string& text, const ir::Function& fn) {
  std::vector<const ir::Op*> ops = opsInOrder(fn);
  std::istringstream in(text);
  std::string name;
  int kind = 0, mayFail = 0;
  size_t at = 0;
  ks.clear();
  while (in >> name >> kind >> at >> mayFail) {
    if (at >= ops.size() || kind < 0 || kind > PtxKernel::Insert) return false;
    PtxKernel k;
    k.name = name;
    k.kind = static_cast<PtxKernel::Kind>(kind);
    k.op = ops[at];
    k.mayFail = mayFail != 0;
    ks.push_back(k);
  }
  return in.eof();
}

}  // namespace tdl::codegen
