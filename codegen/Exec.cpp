// The runtime ABI of compiled graph fns (see Exec.h). Every entry point catches every
// C++ exception and turns it into a status: nothing unwinds through JIT-compiled frames.
#include "codegen/Exec.h"

#include <fmt/format.h>

#include <new>

#include "ir/Eval.h"
#include "ir/ShapeInference.h"
#include "runtime/Create.h"
#include "runtime/Elementwise.h"
#include "runtime/Index.h"
#include "runtime/Print.h"
#include "runtime/Random.h"
#include "runtime/ShapeOps.h"

namespace tdl::codegen {

namespace {

ExecCtx& C(void* ctx) { return *static_cast<ExecCtx*>(ctx); }

int symIndex(const CompiledFn& fn, const std::string& s) {
  for (size_t i = 0; i < fn.syms.size(); ++i)
    if (fn.syms[i] == s) return static_cast<int>(i);
  return -1;
}

// A declared result type's shape with its symbols resolved.
rt::Shape resolve(ExecCtx& c, const ir::TensorType& t) {
  rt::Shape s;
  for (const ir::Dim& d : t.dims) {
    if (d.is_known()) s.push_back(d.size);
    else {
      int k = symIndex(*c.fn, d.sym);
      s.push_back(k >= 0 ? c.syms[k] : 0);
    }
  }
  return s;
}

rt::Tensor iota(const rt::Shape& shape, int64_t axis, rt::DType dtype) {
  rt::Shape line(shape.size(), 1);
  line[static_cast<size_t>(axis)] = shape[static_cast<size_t>(axis)];
  rt::Tensor r = rt::reshape(rt::cast(rt::arange_int(0, shape[static_cast<size_t>(axis)]), dtype), line);
  return rt::broadcast_to(r, shape);
}

std::string printText(const std::string& format, const std::vector<rt::Tensor>& in) {
  std::string out;
  size_t k = 0;
  for (size_t i = 0; i < format.size(); ++i) {
    char ch = format[i];
    if ((ch == '{' || ch == '}') && i + 1 < format.size() && format[i + 1] == ch) {
      out += ch;
      ++i;
    } else if (ch == '{' && i + 1 < format.size() && format[i + 1] == '}') {
      if (k < in.size()) out += rt::format_tensor(in[k++]);
      ++i;
    } else {
      out += ch;
    }
  }
  return out;
}

void runOp(ExecCtx& c, const OpEntry& e) {
  const ir::Op& op = *e.op;
  std::vector<rt::Tensor> in;
  in.reserve(e.in.size());
  for (size_t i = 0; i < e.in.size(); ++i) {
    if (i == 0 && e.moveFirst) in.push_back(std::move(c.slots[e.in[0]]));
    else in.push_back(c.slots[e.in[i]]);
  }
  std::vector<rt::Tensor> out;
  switch (op.kind()) {
    case ir::OpKind::Print: {
      std::string s = printText(op.str_attr("format"), in);
      std::fwrite(s.data(), 1, s.size(), stdout);
      return;
    }
    case ir::OpKind::Assert:
      if (!in[0].scalar_as_bool()) throw rt::Error(op.str_attr("message"));
      return;
    case ir::OpKind::Random: {
      const ir::TensorType& t = op.result()->type;
      rt::Shape s = resolve(c, t);
      const std::string& dist = op.str_attr("dist");
      if (dist == "uniform") out.push_back(rt::rand(s, t.dtype));
      else if (dist == "normal") out.push_back(rt::randn(s, t.dtype));
      else out.push_back(rt::randint(in[0].scalar_as_int64(), in[1].scalar_as_int64(), s));
      break;
    }
    case ir::OpKind::BroadcastTo: out.push_back(rt::broadcast_to(in[0], resolve(c, op.result()->type))); break;
    case ir::OpKind::Reshape: out.push_back(rt::reshape(in[0], resolve(c, op.result()->type))); break;
    case ir::OpKind::Iota:
      out.push_back(iota(resolve(c, op.result()->type), op.int_attr("axis"), op.result()->type.dtype));
      break;
    case ir::OpKind::Update: {
      rt::Tensor x = std::move(in[0]);
      rt::IndexSpec spec;
      for (size_t i = 2; i < in.size(); ++i) spec.push_back(rt::IndexItem::at(in[i].scalar_as_int64()));
      rt::set_index(x, spec, in[1]);
      out.push_back(std::move(x));
      break;
    }
    default: {
      auto r = ir::evaluate(op, in);
      if (!r) throw rt::Error(fmt::format("internal: op '{}' cannot run in compiled code", op.name()));
      out = std::move(*r);
    }
  }
  for (size_t i = 0; i < out.size() && i < e.out.size(); ++i) {
    const auto& syms = e.outSyms[i];
    for (size_t d = 0; d < syms.size() && d < out[i].shape().size(); ++d)
      if (syms[d] >= 0) c.syms[syms[d]] = out[i].dim(static_cast<int64_t>(d));
    c.slots[e.out[i]] = std::move(out[i]);
  }
}

}  // namespace

extern "C" {

int32_t tdl_op(void* ctx, int32_t id) {
  ExecCtx& c = C(ctx);
  try {
    runOp(c, c.fn->ops[static_cast<size_t>(id)]);
    return 0;
  } catch (const rt::Error& e) {
    c.err = e.what();
  } catch (const std::bad_alloc&) {
    c.err = "out of memory";
  } catch (const std::exception& e) {
    c.err = e.what();
  } catch (...) {
    c.err = "unknown error";
  }
  c.errOp = id;
  return 1;
}

int32_t tdl_truth(void* ctx, int32_t slot) {
  const rt::Tensor& t = C(ctx).slots[slot];
  return t.defined() && t.numel() == 1 && t.item_bool(0) ? 1 : 0;
}

void tdl_move(void* ctx, int32_t dst, int32_t src) {
  ExecCtx& c = C(ctx);
  if (dst != src) c.slots[dst] = std::move(c.slots[src]);
}

void tdl_copy(void* ctx, int32_t dst, int32_t src) {
  ExecCtx& c = C(ctx);
  if (dst != src) c.slots[dst] = c.slots[src];
}

}  // extern "C"

std::vector<AbiSymbol> abiSymbols() {
  return {{"tdl_op", reinterpret_cast<void*>(&tdl_op)},
          {"tdl_truth", reinterpret_cast<void*>(&tdl_truth)},
          {"tdl_move", reinterpret_cast<void*>(&tdl_move)},
          {"tdl_copy", reinterpret_cast<void*>(&tdl_copy)}};
}

CompiledFn::CompiledFn() = default;
CompiledFn::~CompiledFn() = default;

bool CompiledFn::run(const std::vector<rt::Tensor>& inputs, std::vector<rt::Tensor>& outputs, ExecError& err) const {
  std::vector<rt::Tensor> slots(static_cast<size_t>(numSlots));
  std::vector<int64_t> symv(syms.size(), 0);
  for (size_t i = 0; i < paramSlots.size() && i < inputs.size(); ++i) {
    slots[static_cast<size_t>(paramSlots[i])] = inputs[i];
    const auto& dims = fn->params()[i]->type.dims;
    for (size_t d = 0; d < dims.size(); ++d)
      if (dims[d].is_symbolic()) {
        for (size_t k = 0; k < syms.size(); ++k)
          if (syms[k] == dims[d].sym) symv[k] = inputs[i].dim(static_cast<int64_t>(d));
      }
  }
  ExecCtx c;
  c.fn = this;
  c.slots = slots.data();
  c.syms = symv.data();
  int status = entry(&c);
  if (status != 0) {
    err.message = c.err;
    err.op = c.errOp >= 0 ? ops[static_cast<size_t>(c.errOp)].op : nullptr;
    return false;
  }
  outputs.clear();
  for (int s : resultSlots) outputs.push_back(slots[static_cast<size_t>(s)]);
  return true;
}

}  // namespace tdl::codegen
