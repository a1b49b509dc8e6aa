// Lowering of the data-parallel ops of a graph fn to NVPTX kernels (see Ptx.h).
//
// Every kernel is a plain LLVM function marked as a kernel in `!nvvm.annotations`
// (LLVM 19 does not yet take the ptx_kernel calling convention as the mark). Global
// memory is address space 1, shared memory 3. The math of exp/log/tanh/sin/... is our
// own (Cephes-style polynomials for f32), so the PTX has no external calls and ptxas
// assembles it without libdevice.
#include "codegen/Ptx.h"
#include "codegen/ScalarEmit.h"

#include <fmt/format.h>

#include <boost/context/fiber.hpp>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>

#include "codegen/JitFactory.h"
#include "codegen/LlvmPasses.h"
#include "ir/Pass.h"
#include "runtime/Reduce.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/IntrinsicsNVPTX.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/Target/TargetOptions.h>
#pragma GCC diagnostic pop

namespace tdl::codegen {

using rt::DType;

namespace {

constexpr const char* kTriple = "nvptx64-nvidia-cuda";


// LLVM 19's NVPTX processors (NVPTX.td).
const std::vector<std::string>& archList() {
  static const std::vector<std::string> v = {"sm_20", "sm_21", "sm_30", "sm_32", "sm_35", "sm_37", "sm_50",
                                             "sm_52", "sm_53", "sm_60", "sm_61", "sm_62", "sm_70", "sm_72",
                                             "sm_75", "sm_80", "sm_86", "sm_87", "sm_89", "sm_90", "sm_90a"};
  return v;
}

void initNvptx() {
  static std::once_flag once;
  std::call_once(once, [] {
    LLVMInitializeNVPTXTargetInfo();
    LLVMInitializeNVPTXTarget();
    LLVMInitializeNVPTXTargetMC();
    LLVMInitializeNVPTXAsmPrinter();
  });
}

bool isFloat(DType d) { return d == DType::F32 || d == DType::F64; }

std::string sanitize(const std::string& s) {
  std::string r;
  for (char c : s) r += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return r;
}

// Why an op could not become (part of) a kernel.
struct Unsupported {
  std::string why;
};

// PTX's primitives: f32 polynomials without calls (no libdevice); f64 math stays on the host.
class PtxMath : public ScalarEmitter {
 public:
  using ScalarEmitter::ScalarEmitter;

 protected:
  V floatPrimitive(rt::UnaryOp op, V x) override {
    if (!x->getType()->isFloatTy()) return nullptr;
    auto C = [&](double v) { return llvm::ConstantFP::get(x->getType(), v); };
    switch (op) {
      case rt::UnaryOp::Exp: return emitExpF32(b_, x);
      case rt::UnaryOp::Expm1: return emitExpm1F32(b_, x);
      case rt::UnaryOp::Log: return emitLogF32(b_, x);
      case rt::UnaryOp::Log1p: return emitLog1pF32(b_, x);
      case rt::UnaryOp::Log2: return b_.CreateFMul(emitLogF32(b_, x), C(1.4426950408889634));
      case rt::UnaryOp::Log10: return b_.CreateFMul(emitLogF32(b_, x), C(0.4342944819032518));
      case rt::UnaryOp::Sin: return emitSinCosF32(b_, x, false);
      case rt::UnaryOp::Cos: return emitSinCosF32(b_, x, true);
      case rt::UnaryOp::Tanh: return emitTanhF32(b_, x);  // eager mode's bits (runtime/Libm.h)
      case rt::UnaryOp::Erf: return emitErfF32(b_, x);
      default: return nullptr;
    }
  }
  V floatPow(V, V) override { return nullptr; }

 public:
  // Where a kernel that may fail records it (its error flag, a global i32), or null where
  // the kernel being built cannot report (fused loops, reductions).
  llvm::Value* failFlag = nullptr;

 protected:
  // Integer // and % by zero: the thread sets the kernel's error flag to 1 (the host
  // reads it after the launch and raises the op's error) and goes on with a safe divisor.
  bool checkDivisor(V isZero) override {
    if (!failFlag) return false;
    llvm::Function* f = b_.GetInsertBlock()->getParent();
    auto* fail = llvm::BasicBlock::Create(b_.getContext(), "div_zero", f);
    auto* cont = llvm::BasicBlock::Create(b_.getContext(), "div_ok", f);
    b_.CreateCondBr(isZero, fail, cont);
    b_.SetInsertPoint(fail);
    b_.CreateStore(b_.getInt32(1), failFlag);
    b_.CreateBr(cont);
    b_.SetInsertPoint(cont);
    return true;
  }
};

class PtxLowering {
 public:
  PtxLowering(llvm::LLVMContext& c, llvm::Module& m) : ctx(c), mod(m), b(c) {}

  llvm::LLVMContext& ctx;
  llvm::Module& mod;
  llvm::IRBuilder<> b;
  std::map<const ir::Value*, llvm::Value*> vals;

  llvm::Type* ty(DType d) {
    switch (d) {
      case DType::Bool: return b.getInt1Ty();
      case DType::I32: return b.getInt32Ty();
      case DType::I64: return b.getInt64Ty();
      case DType::F32: return b.getFloatTy();
      case DType::F64: return b.getDoubleTy();
      case DType::I8: return b.getInt8Ty();
    }
    return b.getInt64Ty();
  }
  // In memory, bool is one byte.
  llvm::Type* memTy(DType d) { return d == DType::Bool ? b.getInt8Ty() : ty(d); }
  // Host emulation (tests): address space 0, and calls to the emulator for the special
  // registers, warp shuffles and barriers instead of NVVM intrinsics.
  bool emulate = false;
  llvm::PointerType* globalPtr() { return llvm::PointerType::get(ctx, emulate ? 0 : 1); }
  llvm::Value* emuCall(const char* name, llvm::Type* ret, std::vector<llvm::Value*> args) {
    std::vector<llvm::Type*> ts;
    for (llvm::Value* a : args) ts.push_back(a->getType());
    return b.CreateCall(mod.getOrInsertFunction(name, llvm::FunctionType::get(ret, ts, false)), args);
  }
  void barrier() {
    if (emulate) emuCall("tdl_emu_barrier", b.getVoidTy(), {});
    else b.CreateIntrinsic(b.getVoidTy(), llvm::Intrinsic::nvvm_barrier0, {});
  }

  llvm::Value* load(llvm::Value* base, llvm::Value* idx, DType d) {
    llvm::Value* x = b.CreateLoad(memTy(d), b.CreateInBoundsGEP(memTy(d), base, idx));
    return d == DType::Bool ? b.CreateICmpNE(x, b.getInt8(0)) : x;
  }
  void store(llvm::Value* base, llvm::Value* idx, llvm::Value* v, DType d) {
    if (d == DType::Bool) v = b.CreateZExt(v, b.getInt8Ty());
    b.CreateStore(v, b.CreateInBoundsGEP(memTy(d), base, idx));
  }

  // The elementwise math: the emitter shared with CPU code, with PTX's primitives.
  PtxMath em{b};
  llvm::Value* convert(llvm::Value* x, DType from, DType to) { return em.convert(x, from, to); }

  llvm::Value* get(const ir::Value* v) {
    auto it = vals.find(v);
    if (it == vals.end()) throw Unsupported{"a value defined outside the kernel"};
    return it->second;
  }

  // ---- scalar ops (the ops a fused body may hold)

  llvm::Value* binary(const ir::Op& op, rt::BinaryOp k) {
    const ir::Value *x = op.operand(0), *y = op.operand(1);
    llvm::Value* r = em.emitBinary(k, get(x), x->type.dtype, get(y), y->type.dtype, op.result()->type.dtype);
    if (!r) throw Unsupported{em.why()};
    return r;
  }

  llvm::Value* unary(const ir::Op& op, rt::UnaryOp k) {
    const ir::Value* x = op.operand(0);
    llvm::Value* r = em.emitUnary(k, get(x), x->type.dtype, op.result()->type.dtype);
    if (!r) throw Unsupported{em.why()};
    return r;
  }

  // Lowers one scalar op whose operands are in `vals`; its result goes there too.
  void scalarOp(const ir::Op& op) {
    const ir::Value* r = op.result();
    DType rd = r->type.dtype;
    llvm::Value* out = nullptr;
    if (op.kind() == ir::OpKind::Constant) {
      const rt::Tensor& t = op.tensor_attr("value");
      if (t.numel() != 1) throw Unsupported{"a tensor constant"};
      if (isFloat(rd)) out = llvm::ConstantFP::get(ty(rd), t.item_double(0));
      else if (rd == DType::Bool) out = b.getInt1(t.item_bool(0));
      else out = llvm::ConstantInt::getSigned(ty(rd), t.item_int64(0));
    } else if (op.kind() == ir::OpKind::Cast) {
      out = convert(get(op.operand(0)), op.operand(0)->type.dtype, rd);
    } else if (op.kind() == ir::OpKind::Select) {
      const ir::Value *c = op.operand(0), *x = op.operand(1), *y = op.operand(2);
      out = b.CreateSelect(convert(get(c), c->type.dtype, DType::Bool), convert(get(x), x->type.dtype, rd),
                           convert(get(y), y->type.dtype, rd));
    } else if (auto bop = ir::as_binary(op.kind())) {
      out = binary(op, *bop);
    } else if (auto uop = ir::as_unary(op.kind())) {
      out = unary(op, *uop);
    } else {
      throw Unsupported{fmt::format("'{}' in a fused body", op.name())};
    }
    vals[r] = out;
  }

  // ---- kernels

  // A grid-stride loop's first index (blockIdx * blockDim + threadIdx) and its stride
  // (gridDim * blockDim), as i64.
  llvm::Value* threadIndex() {
    return b.CreateAdd(b.CreateMul(sreg(llvm::Intrinsic::nvvm_read_ptx_sreg_ctaid_x),
                                   sreg(llvm::Intrinsic::nvvm_read_ptx_sreg_ntid_x)),
                       sreg(llvm::Intrinsic::nvvm_read_ptx_sreg_tid_x));
  }
  llvm::Value* gridSize() {
    return b.CreateMul(sreg(llvm::Intrinsic::nvvm_read_ptx_sreg_nctaid_x), sreg(llvm::Intrinsic::nvvm_read_ptx_sreg_ntid_x));
  }

  llvm::Value* sreg(llvm::Intrinsic::ID id) {
    if (emulate) {
      int which = id == llvm::Intrinsic::nvvm_read_ptx_sreg_tid_x     ? 0
                  : id == llvm::Intrinsic::nvvm_read_ptx_sreg_ntid_x  ? 1
                  : id == llvm::Intrinsic::nvvm_read_ptx_sreg_ctaid_x ? 2
                                                                      : 3;
      return b.CreateZExt(emuCall("tdl_emu_sreg", b.getInt32Ty(), {b.getInt32(static_cast<uint32_t>(which))}), b.getInt64Ty());
    }
    return b.CreateZExt(b.CreateIntrinsic(b.getInt32Ty(), id, {}), b.getInt64Ty());
  }

  void markKernel(llvm::Function* f, int reqThreads) {
    auto* md = mod.getOrInsertNamedMetadata("nvvm.annotations");
    auto mark = [&](const char* key, int v) {
      md->addOperand(llvm::MDNode::get(ctx, {llvm::ValueAsMetadata::get(f), llvm::MDString::get(ctx, key),
                                             llvm::ConstantAsMetadata::get(b.getInt32(static_cast<uint32_t>(v)))}));
    };
    mark("kernel", 1);
    if (reqThreads > 0) mark("reqntidx", reqThreads);
  }

  // A grid-stride loop over the result of a fused op (or of one elementwise op).
  PtxKernel elementwise(const ir::Op& op, const std::string& name) {
    const ir::Value* r = op.result();
    size_t n = op.num_operands();
    bool fused = op.kind() == ir::OpKind::Fused;
    bool rows = false, general = false;
    std::vector<ir::FusedOperand> kinds;
    for (const ir::Value* v : op.operands()) {
      ir::FusedOperand k = ptxOperandKind(v->type, r->type);
      // (A fused op's operands all broadcast to its result: a strided one is read by strides.)
      if (k == ir::FusedOperand::None && v->type.rank() > r->type.rank()) throw Unsupported{"an operand of another shape"};
      rows = rows || k == ir::FusedOperand::Row || k == ir::FusedOperand::Col;
      general = general || k == ir::FusedOperand::None;  // any NumPy broadcast: by strides
      kinds.push_back(k);
    }
    if (r->type.is_scalar()) throw Unsupported{"a scalar result"};
    size_t rank = r->type.dims.size();
    // A single integer // or % may fail: its kernel gets an error flag (i32*) last.
    bool mayFail = !fused && (op.kind() == ir::OpKind::FloorDiv || op.kind() == ir::OpKind::Mod) &&
                   !isFloat(r->type.dtype) && r->type.dtype != DType::Bool;
    std::vector<llvm::Type*> params{globalPtr()};
    std::string sig = fmt::format("({}* out", rt::dtype_name(r->type.dtype));
    for (size_t j = 0; j < n; ++j) {
      const ir::Value* v = op.operand(j);
      if (kinds[j] == ir::FusedOperand::Scalar) {
        params.push_back(memTy(v->type.dtype));
        sig += fmt::format(", {} x{}", rt::dtype_name(v->type.dtype), j);
      } else {
        params.push_back(globalPtr());
        const char* how = kinds[j] == ir::FusedOperand::Row   ? " (row)"
                          : kinds[j] == ir::FusedOperand::Col  ? " (col)"
                          : kinds[j] == ir::FusedOperand::None ? " (strided)"
                                                               : "";
        sig += fmt::format(", {}* x{}{}", rt::dtype_name(v->type.dtype), j, how);
      }
    }
    params.push_back(b.getInt64Ty());
    sig += ", i64 n";
    if (rows) {
      params.push_back(b.getInt64Ty());
      sig += ", i64 inner";
    }
    // General broadcasts: the result's dims, then per such operand its element strides
    // along the result's axes (0 where it is broadcast).
    size_t dimsAt = params.size();
    if (general) {
      for (size_t a = 0; a < rank; ++a) params.push_back(b.getInt64Ty());
      sig += fmt::format(", i64 dims[{}]", rank);
      for (size_t j = 0; j < n; ++j)
        if (kinds[j] == ir::FusedOperand::None) {
          for (size_t a = 0; a < rank; ++a) params.push_back(b.getInt64Ty());
          sig += fmt::format(", i64 strides{}[{}]", j, rank);
        }
    }
    if (mayFail) {
      params.push_back(globalPtr());
      sig += ", i32* err";
    }
    sig += ")";
    auto* ft = llvm::FunctionType::get(b.getVoidTy(), params, false);
    llvm::Function* f = llvm::Function::Create(ft, llvm::Function::ExternalLinkage, name, mod);
    try {
      auto* entry = llvm::BasicBlock::Create(ctx, "entry", f);
      auto* loop = llvm::BasicBlock::Create(ctx, "loop", f);
      auto* exit = llvm::BasicBlock::Create(ctx, "exit", f);
      b.SetInsertPoint(entry);
      vals.clear();
      if (mayFail) em.failFlag = f->getArg(f->arg_size() - 1);
      struct ResetFlag {
        PtxMath& m;
        ~ResetFlag() { m.failFlag = nullptr; }
      } resetFlag{em};
      llvm::Value* count = f->getArg(static_cast<unsigned>(n + 1));
      llvm::Value* inner = rows ? f->getArg(static_cast<unsigned>(n + 2)) : nullptr;
      const ir::Block* body = fused ? &op.region(0).block() : nullptr;
      auto bind = [&](size_t j, llvm::Value* x) {
        if (fused) vals[body->arg(j)] = x;
        else vals[op.operand(j)] = x;
      };
      for (size_t j = 0; j < n; ++j)
        if (kinds[j] == ir::FusedOperand::Scalar) {
          llvm::Value* x = f->getArg(static_cast<unsigned>(j + 1));
          if (op.operand(j)->type.dtype == DType::Bool) x = b.CreateICmpNE(x, b.getInt8(0));
          bind(j, x);
        }
      llvm::Value* start = threadIndex();
      llvm::Value* stride = gridSize();
      b.CreateCondBr(b.CreateICmpSLT(start, count), loop, exit);
      b.SetInsertPoint(loop);
      llvm::PHINode* i = b.CreatePHI(b.getInt64Ty(), 2);
      i->addIncoming(start, entry);
      llvm::Value* row = rows ? b.CreateUDiv(i, inner) : nullptr;
      llvm::Value* col = rows ? b.CreateURem(i, inner) : nullptr;
      std::vector<llvm::Value*> coord(rank, nullptr);
      if (general) {
        llvm::Value* rest = i;
        for (size_t a = rank; a-- > 0;) {
          llvm::Value* d = f->getArg(static_cast<unsigned>(dimsAt + a));
          coord[a] = a == 0 ? rest : b.CreateURem(rest, d);
          if (a > 0) rest = b.CreateUDiv(rest, d);
        }
      }
      size_t strideAt = dimsAt + rank;
      for (size_t j = 0; j < n; ++j) {
        if (kinds[j] == ir::FusedOperand::Scalar) continue;
        llvm::Value* at = kinds[j] == ir::FusedOperand::Row ? col : kinds[j] == ir::FusedOperand::Col ? row : i;
        if (kinds[j] == ir::FusedOperand::None) {
          at = b.getInt64(0);
          for (size_t a = 0; a < rank; ++a)
            at = b.CreateAdd(at, b.CreateMul(coord[a], f->getArg(static_cast<unsigned>(strideAt + a))));
          strideAt += rank;
        }
        bind(j, load(f->getArg(static_cast<unsigned>(j + 1)), at, op.operand(j)->type.dtype));
      }
      llvm::Value* val;
      if (fused) {
        const ir::Op* y = nullptr;
        for (size_t k = 0; k < body->size(); ++k) {
          const ir::Op& x = body->op(k);
          if (x.kind() == ir::OpKind::Yield) y = &x;
          else scalarOp(x);
        }
        if (!y || y->num_operands() != 1) throw Unsupported{"a fused body that does not yield one value"};
        val = convert(get(y->operand(0)), y->operand(0)->type.dtype, r->type.dtype);
      } else {
        scalarOp(op);  // throws Unsupported for ops that may fail (integer // and %) or need the runtime
        val = get(r);
      }
      store(f->getArg(0), i, val, r->type.dtype);
      llvm::Value* next = b.CreateAdd(i, stride);
      i->addIncoming(next, b.GetInsertBlock());
      b.CreateCondBr(b.CreateICmpSLT(next, count), loop, exit);
      b.SetInsertPoint(exit);
      b.CreateRetVoid();
    } catch (const Unsupported&) {
      f->eraseFromParent();
      throw;
    }
    markKernel(f, 0);
    PtxKernel k{name, rows ? PtxKernel::ElementwiseRows : PtxKernel::Elementwise, &op, sig};
    k.mayFail = mayFail;
    return k;
  }

  // A kernel over x viewed as [outer, red, inner], params (out, in, i64 outer, i64 red,
  // i64 inner): a grid-stride loop over the outer * inner outputs. begin leaves the builder
  // in the loop body, where output i's elements along red are in[at0 + r * inner] and the
  // blocks `red` / `red.done` are the caller's to fill; end closes the loop from the block
  // the builder is in (after the caller's store of output i).
  struct StridedOutputs {
    llvm::Function* fn;
    llvm::Value *out, *in, *red, *inner, *count, *stride, *at0;
    llvm::PHINode* i;
    llvm::BasicBlock *loop, *rl, *rdone, *exit;
  };
  StridedOutputs beginStridedOutputs(const std::string& name) {
    StridedOutputs k{};
    auto* i64t = b.getInt64Ty();
    auto* ft = llvm::FunctionType::get(b.getVoidTy(), {globalPtr(), globalPtr(), i64t, i64t, i64t}, false);
    k.fn = llvm::Function::Create(ft, llvm::Function::ExternalLinkage, name, mod);
    k.out = k.fn->getArg(0);
    k.in = k.fn->getArg(1);
    llvm::Value* outer = k.fn->getArg(2);
    k.red = k.fn->getArg(3);
    k.inner = k.fn->getArg(4);
    auto* entry = llvm::BasicBlock::Create(ctx, "entry", k.fn);
    k.loop = llvm::BasicBlock::Create(ctx, "loop", k.fn);
    k.rl = llvm::BasicBlock::Create(ctx, "red", k.fn);
    k.rdone = llvm::BasicBlock::Create(ctx, "red.done", k.fn);
    k.exit = llvm::BasicBlock::Create(ctx, "exit", k.fn);
    b.SetInsertPoint(entry);
    k.count = b.CreateMul(outer, k.inner);
    llvm::Value* start = threadIndex();
    k.stride = gridSize();
    llvm::Value* plane = b.CreateMul(k.red, k.inner);
    b.CreateCondBr(b.CreateICmpSLT(start, k.count), k.loop, k.exit);
    b.SetInsertPoint(k.loop);
    k.i = b.CreatePHI(i64t, 2);
    k.i->addIncoming(start, entry);
    k.at0 = b.CreateAdd(b.CreateMul(b.CreateUDiv(k.i, k.inner), plane), b.CreateURem(k.i, k.inner));
    return k;
  }
  void endStridedOutputs(StridedOutputs& k) {
    llvm::Value* next = b.CreateAdd(k.i, k.stride);
    k.i->addIncoming(next, b.GetInsertBlock());
    b.CreateCondBr(b.CreateICmpSLT(next, k.count), k.loop, k.exit);
    b.SetInsertPoint(k.exit);
    b.CreateRetVoid();
    markKernel(k.fn, 0);
  }

  // A kernel over the `rank`-dimensional index space `dims` through strided views: params
  // (out, in, i64 n, i64 offset, i64 dims[rank], then `views` arrays of i64 strides[rank]);
  // a grid-stride loop over i < n computes, for each view, offset-or-0 + sum_a coord_a(i) *
  // strides[a] (view 0 starts at offset) and hands them to body(f, positions).
  template <class Body>
  llvm::Function* viewKernel(const std::string& name, size_t rank, size_t views, Body&& body) {
    auto* i64t = b.getInt64Ty();
    std::vector<llvm::Type*> params{globalPtr(), globalPtr(), i64t, i64t};
    for (size_t a = 0; a < (1 + views) * rank; ++a) params.push_back(i64t);
    auto* f = llvm::Function::Create(llvm::FunctionType::get(b.getVoidTy(), params, false),
                                     llvm::Function::ExternalLinkage, name, mod);
    auto* entry = llvm::BasicBlock::Create(ctx, "entry", f);
    auto* loop = llvm::BasicBlock::Create(ctx, "loop", f);
    auto* exit = llvm::BasicBlock::Create(ctx, "exit", f);
    b.SetInsertPoint(entry);
    llvm::Value* count = f->getArg(2);
    llvm::Value* start = threadIndex();
    llvm::Value* stride = gridSize();
    b.CreateCondBr(b.CreateICmpSLT(start, count), loop, exit);
    b.SetInsertPoint(loop);
    llvm::PHINode* i = b.CreatePHI(i64t, 2);
    i->addIncoming(start, entry);
    std::vector<llvm::Value*> pos(views, b.getInt64(0));
    pos[0] = f->getArg(3);
    llvm::Value* rest = i;
    for (size_t a = rank; a-- > 0;) {
      llvm::Value* d = f->getArg(static_cast<unsigned>(4 + a));
      llvm::Value* coord = a == 0 ? rest : b.CreateURem(rest, d);
      if (a > 0) rest = b.CreateUDiv(rest, d);
      for (size_t v = 0; v < views; ++v)
        pos[v] = b.CreateAdd(pos[v], b.CreateMul(coord, f->getArg(static_cast<unsigned>(4 + (1 + v) * rank + a))));
    }
    body(f, i, pos);
    llvm::Value* next = b.CreateAdd(i, stride);
    i->addIncoming(next, b.GetInsertBlock());
    b.CreateCondBr(b.CreateICmpSLT(next, count), loop, exit);
    b.SetInsertPoint(exit);
    b.CreateRetVoid();
    markKernel(f, 0);
    return f;
  }

  // transpose, slice, broadcast_to: result element i read through a strided view of the
  // input (Kernels.h, copyView): params (out, in, i64 n, i64 offset, i64 dims[R], i64
  // strides[R]), R the result's rank. Bytes are copied as they are (bool: one byte).
  PtxKernel copy(const ir::Op& op, const std::string& name) {
    const ir::Value* r = op.result();
    if (r->type.is_scalar()) throw Unsupported{"a scalar result"};
    if (op.operand(0)->type.dtype != r->type.dtype) throw Unsupported{"a cast"};
    size_t rank = r->type.dims.size();
    llvm::Type* t = memTy(r->type.dtype);
    viewKernel(name, rank, 1, [&](llvm::Function* f, llvm::Value* i, std::vector<llvm::Value*>& pos) {
      llvm::Value* v = b.CreateLoad(t, b.CreateInBoundsGEP(t, f->getArg(1), pos[0]));
      b.CreateStore(v, b.CreateInBoundsGEP(t, f->getArg(0), i));
    });
    std::string sig = fmt::format("({0}* out, {0}* in, i64 n, i64 offset, i64 dims[{1}], i64 strides[{1}])",
                                  rt::dtype_name(r->type.dtype), rank);
    return PtxKernel{name, PtxKernel::Copy, &op, sig};
  }

  // update / dyn_slice_update: the host copies x to the result first (or reuses it), then
  // this kernel writes v, cast to x's dtype and broadcast, into the selected region: params
  // (out, v, i64 n, i64 offset, i64 dims[R], i64 outStrides[R], i64 vStrides[R]), R = x's rank
  // (Kernels.h, insertView). v is passed by pointer even when it is a scalar.
  PtxKernel insert(const ir::Op& op, const std::string& name) {
    const ir::Value *x = op.operand(0), *v = op.operand(1);
    if (x->type.is_scalar()) throw Unsupported{"of a scalar"};
    DType xd = x->type.dtype, vd = v->type.dtype;
    size_t rank = x->type.dims.size();
    viewKernel(name, rank, 2, [&](llvm::Function* f, llvm::Value*, std::vector<llvm::Value*>& pos) {
      store(f->getArg(0), pos[0], convert(load(f->getArg(1), pos[1], vd), vd, xd), xd);
    });
    std::string sig = fmt::format("({0}* out, {1}* v, i64 n, i64 offset, i64 dims[{2}], i64 outStrides[{2}], i64 vStrides[{2}])",
                                  rt::dtype_name(xd), rt::dtype_name(vd), rank);
    return PtxKernel{name, PtxKernel::Insert, &op, sig};
  }

  // argmax/argmin along one axis: x viewed as [outer, red, inner], one thread per output
  // walks red (grid-stride over the outputs); the first best index wins, a NaN wins first.
  PtxKernel argReduce(const ir::Op& op, const std::string& name) {
    bool mx = op.kind() == ir::OpKind::ArgMax;
    const ir::Value* x = op.operand(0);
    DType xd = x->type.dtype;
    if (x->type.is_scalar()) throw Unsupported{"of a scalar"};
    auto* i64t = b.getInt64Ty();
    StridedOutputs k = beginStridedOutputs(name);
    llvm::Value *in = k.in, *red = k.red, *inner = k.inner, *at0 = k.at0;
    llvm::BasicBlock *loop = k.loop, *rl = k.rl, *rdone = k.rdone;
    llvm::Value* first = load(in, at0, xd);
    b.CreateCondBr(b.CreateICmpSGT(red, b.getInt64(1)), rl, rdone);
    b.SetInsertPoint(rl);
    llvm::PHINode* r = b.CreatePHI(i64t, 2);
    llvm::PHINode* best = b.CreatePHI(first->getType(), 2);
    llvm::PHINode* bi = b.CreatePHI(i64t, 2);
    r->addIncoming(b.getInt64(1), loop);
    best->addIncoming(first, loop);
    bi->addIncoming(b.getInt64(0), loop);
    llvm::Value* v = load(in, b.CreateAdd(at0, b.CreateMul(r, inner)), xd);
    llvm::Value* better;
    if (isFloat(xd))
      better = b.CreateAnd(b.CreateFCmpORD(best, best),
                           b.CreateOr(b.CreateFCmpUNO(v, v), mx ? b.CreateFCmpOGT(v, best) : b.CreateFCmpOLT(v, best)));
    else if (xd == DType::Bool)
      better = mx ? b.CreateICmpUGT(v, best) : b.CreateICmpULT(v, best);
    else
      better = mx ? b.CreateICmpSGT(v, best) : b.CreateICmpSLT(v, best);
    llvm::Value* best2 = b.CreateSelect(better, v, best);
    llvm::Value* bi2 = b.CreateSelect(better, r, bi);
    llvm::Value* rn = b.CreateAdd(r, b.getInt64(1));
    r->addIncoming(rn, rl);
    best->addIncoming(best2, rl);
    bi->addIncoming(bi2, rl);
    b.CreateCondBr(b.CreateICmpSLT(rn, red), rl, rdone);
    b.SetInsertPoint(rdone);
    llvm::PHINode* res = b.CreatePHI(i64t, 2);
    res->addIncoming(b.getInt64(0), loop);
    res->addIncoming(bi2, rl);
    store(k.out, k.i, res, DType::I64);
    endStridedOutputs(k);
    std::string sig = fmt::format("(i64* out, {}* in, i64 outer, i64 red, i64 inner)", rt::dtype_name(xd));
    return PtxKernel{name, PtxKernel::ArgReduce, &op, sig};
  }

  // One 32-bit or 64-bit value exchanged across a warp by XOR of the lane.
  llvm::Value* shuffleXor(llvm::Value* v, int laneMask) {
    llvm::Type* t = v->getType();
    auto shfl32 = [&](llvm::Value* x) -> llvm::Value* {
      bool fl = x->getType()->isFloatTy();
      if (emulate) {
        llvm::Value* bits = fl ? b.CreateBitCast(x, b.getInt32Ty()) : x;
        llvm::Value* r = emuCall("tdl_emu_shfl", b.getInt32Ty(), {bits, b.getInt32(static_cast<uint32_t>(laneMask))});
        return fl ? b.CreateBitCast(r, b.getFloatTy()) : r;
      }
      return b.CreateIntrinsic(x->getType(), fl ? llvm::Intrinsic::nvvm_shfl_sync_bfly_f32 : llvm::Intrinsic::nvvm_shfl_sync_bfly_i32,
                               {b.getInt32(0xffffffffu), x, b.getInt32(static_cast<uint32_t>(laneMask)), b.getInt32(0x1f)});
    };
    if (t->getPrimitiveSizeInBits() == 32) return shfl32(v);
    llvm::Value* bits = b.CreateBitCast(v, b.getInt64Ty());
    llvm::Value* lo = shfl32(b.CreateTrunc(bits, b.getInt32Ty()));
    llvm::Value* hi = shfl32(b.CreateTrunc(b.CreateLShr(bits, 32), b.getInt32Ty()));
    llvm::Value* joined = b.CreateOr(b.CreateZExt(lo, b.getInt64Ty()), b.CreateShl(b.CreateZExt(hi, b.getInt64Ty()), 32));
    return b.CreateBitCast(joined, t);
  }

  // A reduction over the trailing `cols` elements of each of `rows` rows.
  PtxKernel reduce(const ir::Op& op, const std::string& name) {
    auto kind = rt::ReduceOp::Sum;
    const std::string& kn = op.str_attr("kind");
    bool found = false;
    for (auto k : {rt::ReduceOp::Sum, rt::ReduceOp::Mean, rt::ReduceOp::Max, rt::ReduceOp::Min, rt::ReduceOp::Prod,
                   rt::ReduceOp::All, rt::ReduceOp::Any})
      if (rt::reduce_op_name(k) == kn) kind = k, found = true;
    if (!found) throw Unsupported{fmt::format("reduce {}", kn)};
    const ir::Value* x = op.operand(0);
    const ir::Value* r = op.result();
    int64_t rank = x->type.rank();
    if (rank == 0) throw Unsupported{"a reduction of a scalar"};
    std::vector<bool> mask(static_cast<size_t>(rank), false);
    for (int64_t a : op.ints_attr("axes")) {
      int64_t n = a < 0 ? a + rank : a;
      if (n < 0 || n >= rank || mask[static_cast<size_t>(n)]) throw Unsupported{"bad axes"};
      mask[static_cast<size_t>(n)] = true;
    }
    // The reduced axes must be one run: x is [outer, red, inner] in C order.
    size_t lo = 0, hi = mask.size();
    while (lo < mask.size() && !mask[lo]) ++lo;
    while (hi > lo && !mask[hi - 1]) --hi;
    if (lo == hi) throw Unsupported{"a reduction over no axis"};
    for (size_t a = lo; a < hi; ++a)
      if (!mask[a]) throw Unsupported{"a reduction over axes that are not adjacent"};
    bool strided = hi < mask.size();  // inner > 1 (or symbolic): one thread per output
    DType xd = x->type.dtype, rd = r->type.dtype;
    // fused_reduce: the reduced values are body(x0[i], x1..., ...) over operand 0's shape;
    // the other operands are scalars (by value), or tensors of that shape, rows or columns
    // of it (by pointer, after `in`); then rows, cols and, with rows/columns, x0's last dim.
    bool fusedR = op.kind() == ir::OpKind::FusedReduce;
    const ir::Block* body = fusedR ? &op.region(0).block() : nullptr;
    std::vector<ir::FusedOperand> kinds;
    bool fusedRows = false;
    if (fusedR) {
      if (strided) throw Unsupported{"a fused reduction over leading axes"};
      const ir::Op* y = body->terminator();
      if (!y || y->kind() != ir::OpKind::Yield || y->num_operands() != 1) throw Unsupported{"a body without one yield"};
      xd = y->operand(0)->type.dtype;
      for (const ir::Value* v : op.operands()) {
        ir::FusedOperand k = ptxOperandKind(v->type, x->type);
        if (k == ir::FusedOperand::None) throw Unsupported{"an operand of another shape"};
        fusedRows = fusedRows || k == ir::FusedOperand::Row || k == ir::FusedOperand::Col;
        kinds.push_back(k);
      }
    }
    llvm::Function* kfn = nullptr;  // the kernel, once created
    llvm::Value* kinner = nullptr;  // x0's last dim (fused_reduce with rows/columns)
    bool logical = kind == rt::ReduceOp::All || kind == rt::ReduceOp::Any;
    bool minmax = kind == rt::ReduceOp::Max || kind == rt::ReduceOp::Min;
    if (minmax && xd == DType::Bool) throw Unsupported{"max/min of bool"};
    // The accumulator: the result dtype (bool as i32 0/1 so that it can be shuffled).
    DType ad = logical ? DType::I32 : rd;
    llvm::Type* at = ty(ad);
    bool f = isFloat(ad);
    llvm::Value* identity;
    switch (kind) {
      case rt::ReduceOp::Sum: case rt::ReduceOp::Mean: case rt::ReduceOp::Any:
        identity = f ? llvm::ConstantFP::get(at, 0.0) : llvm::ConstantInt::get(at, 0);
        break;
      case rt::ReduceOp::Prod: case rt::ReduceOp::All:
        identity = f ? llvm::ConstantFP::get(at, 1.0) : llvm::ConstantInt::get(at, 1);
        break;
      case rt::ReduceOp::Max:
        identity = f ? llvm::ConstantFP::getInfinity(at, true) : llvm::ConstantInt::get(at, llvm::APInt::getSignedMinValue(at->getIntegerBitWidth()));
        break;
      default:  // Min
        identity = f ? llvm::ConstantFP::getInfinity(at, false) : llvm::ConstantInt::get(at, llvm::APInt::getSignedMaxValue(at->getIntegerBitWidth()));
        break;
    }
    auto combine = [&](llvm::Value* acc, llvm::Value* v) -> llvm::Value* {
      switch (kind) {
        case rt::ReduceOp::Sum: case rt::ReduceOp::Mean: return f ? b.CreateFAdd(acc, v) : b.CreateAdd(acc, v);
        case rt::ReduceOp::Prod: return f ? b.CreateFMul(acc, v) : b.CreateMul(acc, v);
        case rt::ReduceOp::All: return b.CreateAnd(acc, v);
        case rt::ReduceOp::Any: return b.CreateOr(acc, v);
        default: {
          bool mx = kind == rt::ReduceOp::Max;  // a NaN wins (rt)
          llvm::Value* pick = f ? b.CreateOr(mx ? b.CreateFCmpOGT(v, acc) : b.CreateFCmpOLT(v, acc), b.CreateFCmpUNO(v, v))
                                : (mx ? b.CreateICmpSGT(v, acc) : b.CreateICmpSLT(v, acc));
          return b.CreateSelect(pick, v, acc);
        }
      }
    };
    auto finish = [&](llvm::Value* total, llvm::Value* red) {
      if (kind == rt::ReduceOp::Mean) total = b.CreateFDiv(total, b.CreateSIToFP(red, at));
      return logical ? b.CreateICmpNE(total, b.getInt32(0)) : convert(total, ad, rd);
    };
    auto loadAcc = [&](llvm::Value* in, llvm::Value* idx) -> llvm::Value* {
      llvm::Value* v;
      if (fusedR) {
        for (size_t j = 0; j < kinds.size(); ++j) {
          if (kinds[j] == ir::FusedOperand::Scalar) continue;
          llvm::Value* p = j == 0 ? in : kfn->getArg(static_cast<unsigned>(j + 1));
          llvm::Value* at = kinds[j] == ir::FusedOperand::Row   ? b.CreateURem(idx, kinner)
                            : kinds[j] == ir::FusedOperand::Col ? b.CreateUDiv(idx, kinner)
                                                                : idx;
          vals[body->arg(j)] = load(p, at, op.operand(j)->type.dtype);
        }
        const ir::Op* y = nullptr;
        for (size_t k = 0; k < body->size(); ++k) {
          const ir::Op& o = body->op(k);
          if (o.kind() == ir::OpKind::Yield) y = &o;
          else scalarOp(o);
        }
        v = get(y->operand(0));
      } else {
        v = load(in, idx, xd);
      }
      return logical ? b.CreateZExt(convert(v, xd, DType::Bool), at) : convert(v, xd, ad);
    };
    if (strided) {
      // out[o, i] = reduce over r of x[o, r, i]: a grid-stride loop over the outputs, each
      // thread walking r; neighbouring threads read neighbouring i (coalesced).
      auto* i64t = b.getInt64Ty();
      StridedOutputs k = beginStridedOutputs(name);
      llvm::Value *in = k.in, *red = k.red, *inner = k.inner, *at0 = k.at0;
      llvm::BasicBlock *rl = k.rl, *rdone = k.rdone;
      llvm::BasicBlock* loopEnd = b.GetInsertBlock();
      b.CreateCondBr(b.CreateICmpSGT(red, b.getInt64(0)), rl, rdone);
      b.SetInsertPoint(rl);
      llvm::PHINode* r = b.CreatePHI(i64t, 2);
      llvm::PHINode* acc = b.CreatePHI(at, 2);
      r->addIncoming(b.getInt64(0), loopEnd);
      acc->addIncoming(identity, loopEnd);
      llvm::Value* acc2 = combine(acc, loadAcc(in, b.CreateAdd(at0, b.CreateMul(r, inner))));
      llvm::Value* rn = b.CreateAdd(r, b.getInt64(1));
      r->addIncoming(rn, rl);
      acc->addIncoming(acc2, rl);
      b.CreateCondBr(b.CreateICmpSLT(rn, red), rl, rdone);
      b.SetInsertPoint(rdone);
      llvm::PHINode* total = b.CreatePHI(at, 2);
      total->addIncoming(identity, loopEnd);
      total->addIncoming(acc2, rl);
      store(k.out, k.i, finish(total, red), rd);
      endStridedOutputs(k);
      std::string sig = fmt::format("({}* out, {}* in, i64 outer, i64 red, i64 inner)", rt::dtype_name(rd), rt::dtype_name(xd));
      return PtxKernel{name, PtxKernel::ReduceStrided, &op, sig};
    }
    std::vector<llvm::Type*> params{globalPtr(), globalPtr()};
    std::string extra;
    for (size_t j = 1; j < kinds.size(); ++j) {
      const ir::Value* v = op.operand(j);
      params.push_back(kinds[j] == ir::FusedOperand::Scalar ? memTy(v->type.dtype) : globalPtr());
      const char* how = kinds[j] == ir::FusedOperand::Row ? " (row)" : kinds[j] == ir::FusedOperand::Col ? " (col)" : "";
      extra += fmt::format(", {}{} x{}{}", rt::dtype_name(v->type.dtype), kinds[j] == ir::FusedOperand::Scalar ? "" : "*", j, how);
    }
    unsigned rowsAt = static_cast<unsigned>(params.size());
    params.push_back(b.getInt64Ty());
    params.push_back(b.getInt64Ty());
    if (fusedRows) params.push_back(b.getInt64Ty());
    auto* ft = llvm::FunctionType::get(b.getVoidTy(), params, false);
    llvm::Function* fn = llvm::Function::Create(ft, llvm::Function::ExternalLinkage, name, mod);
    kfn = fn;
    constexpr int kWarps = kReduceBlock / 32;
    auto* smemT = llvm::ArrayType::get(at, kWarps);
    auto* smem = new llvm::GlobalVariable(mod, smemT, false, llvm::GlobalValue::InternalLinkage, llvm::UndefValue::get(smemT),
                                          name + "_smem", nullptr, llvm::GlobalValue::NotThreadLocal, emulate ? 0 : 3);
    llvm::Value *out = fn->getArg(0), *in = fn->getArg(1), *rows = fn->getArg(rowsAt), *cols = fn->getArg(rowsAt + 1);
    if (fusedRows) kinner = fn->getArg(rowsAt + 2);
    auto* entry = llvm::BasicBlock::Create(ctx, "entry", fn);
    auto* rowHead = llvm::BasicBlock::Create(ctx, "row", fn);
    auto* colLoop = llvm::BasicBlock::Create(ctx, "col", fn);
    auto* colDone = llvm::BasicBlock::Create(ctx, "col.done", fn);
    auto* writeWarp = llvm::BasicBlock::Create(ctx, "warp.write", fn);
    auto* afterWrite = llvm::BasicBlock::Create(ctx, "warp.after", fn);
    auto* final = llvm::BasicBlock::Create(ctx, "final", fn);
    auto* writeOut = llvm::BasicBlock::Create(ctx, "out.write", fn);
    auto* rowNext = llvm::BasicBlock::Create(ctx, "row.next", fn);
    auto* exit = llvm::BasicBlock::Create(ctx, "exit", fn);
    b.SetInsertPoint(entry);
    if (fusedR) {
      vals.clear();
      for (size_t j = 1; j < kinds.size(); ++j)
        if (kinds[j] == ir::FusedOperand::Scalar) {
          llvm::Value* a = fn->getArg(static_cast<unsigned>(j + 1));
          vals[body->arg(j)] = op.operand(j)->type.dtype == DType::Bool ? b.CreateICmpNE(a, b.getInt8(0)) : a;
        }
    }
    llvm::Value* tid = sreg(llvm::Intrinsic::nvvm_read_ptx_sreg_tid_x);
    llvm::Value* lane = b.CreateAnd(tid, b.getInt64(31));
    llvm::Value* warp = b.CreateLShr(tid, 5);
    llvm::Value* row0 = sreg(llvm::Intrinsic::nvvm_read_ptx_sreg_ctaid_x);
    llvm::Value* rowStride = sreg(llvm::Intrinsic::nvvm_read_ptx_sreg_nctaid_x);
    b.CreateCondBr(b.CreateICmpSLT(row0, rows), rowHead, exit);
    // row: acc over columns tid, tid + kReduceBlock, ...
    b.SetInsertPoint(rowHead);
    llvm::PHINode* row = b.CreatePHI(b.getInt64Ty(), 2);
    row->addIncoming(row0, entry);
    llvm::Value* base = b.CreateMul(row, cols);
    b.CreateCondBr(b.CreateICmpSLT(tid, cols), colLoop, colDone);
    b.SetInsertPoint(colLoop);
    llvm::PHINode* c = b.CreatePHI(b.getInt64Ty(), 2);
    llvm::PHINode* acc = b.CreatePHI(at, 2);
    c->addIncoming(tid, rowHead);
    acc->addIncoming(identity, rowHead);
    llvm::Value* acc2 = combine(acc, loadAcc(in, b.CreateAdd(base, c)));
    llvm::Value* cn = b.CreateAdd(c, b.getInt64(kReduceBlock));
    c->addIncoming(cn, colLoop);
    acc->addIncoming(acc2, colLoop);
    b.CreateCondBr(b.CreateICmpSLT(cn, cols), colLoop, colDone);
    b.SetInsertPoint(colDone);
    llvm::PHINode* part = b.CreatePHI(at, 2);
    part->addIncoming(identity, rowHead);
    part->addIncoming(acc2, colLoop);
    auto warpReduce = [&](llvm::Value* x) {
      for (int m = 16; m >= 1; m /= 2) x = combine(x, shuffleXor(x, m));
      return x;
    };
    llvm::Value* w = warpReduce(part);
    b.CreateCondBr(b.CreateICmpEQ(lane, b.getInt64(0)), writeWarp, afterWrite);
    b.SetInsertPoint(writeWarp);
    b.CreateStore(w, b.CreateInBoundsGEP(smemT, smem, {b.getInt64(0), warp}));
    b.CreateBr(afterWrite);
    b.SetInsertPoint(afterWrite);
    barrier();
    b.CreateCondBr(b.CreateICmpEQ(warp, b.getInt64(0)), final, rowNext);
    b.SetInsertPoint(final);
    llvm::Value* inWarps = b.CreateICmpULT(lane, b.getInt64(kWarps));
    llvm::Value* slot = b.CreateSelect(inWarps, lane, b.getInt64(0));
    llvm::Value* s = b.CreateLoad(at, b.CreateInBoundsGEP(smemT, smem, {b.getInt64(0), slot}));
    llvm::Value* total = warpReduce(b.CreateSelect(inWarps, s, identity));
    b.CreateCondBr(b.CreateICmpEQ(lane, b.getInt64(0)), writeOut, rowNext);
    b.SetInsertPoint(writeOut);
    store(out, row, finish(total, cols), rd);
    b.CreateBr(rowNext);
    b.SetInsertPoint(rowNext);
    // Every warp waits until warp 0 has read the partial sums before the next row.
    barrier();
    llvm::Value* rn = b.CreateAdd(row, rowStride);
    row->addIncoming(rn, rowNext);
    b.CreateCondBr(b.CreateICmpSLT(rn, rows), rowHead, exit);
    b.SetInsertPoint(exit);
    b.CreateRetVoid();
    markKernel(fn, kReduceBlock);
    std::string sig = fmt::format("({}* out, {}* {}{}, i64 rows, i64 cols{}; {} threads per block)", rt::dtype_name(rd),
                                  rt::dtype_name(x->type.dtype), fusedR ? "x0" : "in", extra,
                                  fusedRows ? ", i64 inner" : "", kReduceBlock);
    return PtxKernel{name, PtxKernel::Reduce, &op, sig};
  }
};

// Ops that cost nothing on the host and are left out of the "host:" line.
bool trivial(ir::OpKind k) {
  return k == ir::OpKind::Constant || k == ir::OpKind::Yield || k == ir::OpKind::Return || k == ir::OpKind::Dim;
}

// Whether op is a single elementwise op on tensors that a kernel can compute.
bool elementwiseOnTensors(const ir::Op& op) {
  if (!op.has_trait(ir::kElementwise) || op.num_results() != 1) return false;
  return !op.result()->type.is_scalar();
}

// One kernel per data-parallel op of fn (program order, nested regions too); the other
// ops' names (with why, for an op that could not become a kernel) go to result.hostOps.
void buildKernels(const ir::Function& fn, PtxLowering& low, PtxModule& result) {
  std::vector<std::string>& hostNames = result.hostOps;
  auto noteHost = [&](const std::string& what) {
    if (std::find(hostNames.begin(), hostNames.end(), what) == hostNames.end()) hostNames.push_back(what);
  };
  int count = 0;
  std::string base = sanitize(fn.name);
  std::function<void(const ir::Block&)> visit = [&](const ir::Block& blk) {
    for (size_t i = 0; i < blk.size(); ++i) {
      const ir::Op& op = blk.op(i);
      bool isFused = op.kind() == ir::OpKind::Fused;
      bool isReduce = op.kind() == ir::OpKind::Reduce || op.kind() == ir::OpKind::FusedReduce;
      bool isArg = op.kind() == ir::OpKind::ArgMax || op.kind() == ir::OpKind::ArgMin;
      // (An index with a scalar result stays on the host: one element is read there, and
      // the tensor's host copy serves the next reads too.)
      bool isCopy = op.kind() == ir::OpKind::Transpose || op.kind() == ir::OpKind::Slice ||
                    op.kind() == ir::OpKind::BroadcastTo ||
                    (op.kind() == ir::OpKind::Index && !op.result()->type.is_scalar());
      bool isInsert = op.kind() == ir::OpKind::Update || op.kind() == ir::OpKind::DynSliceUpdate;
      if (isFused || isReduce || isArg || isCopy || isInsert || elementwiseOnTensors(op)) {
        std::string name = fmt::format("{}_k{}_{}", base, count, sanitize(std::string(op.name())));
        try {
          result.kernels.push_back(isReduce ? low.reduce(op, name)
                                   : isArg  ? low.argReduce(op, name)
                                   : isCopy ? low.copy(op, name)
                                   : isInsert ? low.insert(op, name)
                                            : low.elementwise(op, name));
          ++count;
        } catch (const Unsupported& u) {
          // Drop what was built of it (a kernel given up half-way has unterminated blocks).
          if (llvm::Function* f = low.mod.getFunction(name)) f->eraseFromParent();
          if (llvm::GlobalVariable* g = low.mod.getNamedGlobal(name + "_smem")) g->eraseFromParent();
          noteHost(fmt::format("{} ({})", op.name(), u.why));
        }
      } else if (!trivial(op.kind())) {
        noteHost(std::string(op.name()));
      }
      if (!isFused && op.kind() != ir::OpKind::FusedReduce)
        for (size_t r = 0; r < op.num_regions(); ++r) visit(op.region(r).block());
    }
  };
  visit(fn.entry());
}

}  // namespace

bool isKnownGpuArch(const std::string& arch) {
  for (const std::string& a : archList())
    if (a == arch) return true;
  return false;
}

std::string knownGpuArchs() {
  std::string s;
  for (const std::string& a : archList()) s += (s.empty() ? "" : " ") + a;
  return s;
}

PtxModule compilePtx(const ir::Function& fn, const std::string& gpuArch) {
  if (!isKnownGpuArch(gpuArch))
    throw std::invalid_argument(fmt::format("unknown GPU arch '{}' (LLVM's NVPTX target knows {})", gpuArch, knownGpuArchs()));
  initNvptx();
  std::string err;
  const llvm::Target* target = llvm::TargetRegistry::lookupTarget(kTriple, err);
  if (!target) throw std::runtime_error("the NVPTX target is not available: " + err);
  llvm::TargetOptions to;
  std::unique_ptr<llvm::TargetMachine> tm(
      target->createTargetMachine(kTriple, gpuArch, "", to, std::nullopt, std::nullopt, llvm::CodeGenOptLevel::Aggressive));
  if (!tm) throw std::runtime_error("cannot create an NVPTX target machine for " + gpuArch);

  llvm::LLVMContext ctx;
  llvm::Module mod("tdl_" + sanitize(fn.name), ctx);
  mod.setTargetTriple(kTriple);
  mod.setDataLayout(tm->createDataLayout());
  PtxLowering low(ctx, mod);
  PtxModule result;
  buildKernels(fn, low, result);
  const std::vector<std::string>& hostNames = result.hostOps;

  std::string verr;
  llvm::raw_string_ostream vs(verr);
  if (llvm::verifyModule(mod, &vs)) throw std::runtime_error("internal: invalid NVPTX LLVM IR: " + verr);
  optimizeModule(mod, tm.get());
  std::string ptx = emitFile(mod, *tm, llvm::CodeGenFileType::AssemblyFile, "the NVPTX target cannot emit PTX");

  std::string head = fmt::format("// tdl: graph fn {} for {} ({} kernel{})\n", fn.name, gpuArch, result.kernels.size(),
                                 result.kernels.size() == 1 ? "" : "s");
  for (const PtxKernel& k : result.kernels) {
    const char* how = k.kind == PtxKernel::Reduce ? "block reduction, one block per row"
                      : k.kind == PtxKernel::Copy ? "grid-stride loop through a strided view"
                      : k.kind == PtxKernel::Insert ? "grid-stride loop over the updated region"
                      : k.kind == PtxKernel::ReduceStrided || k.kind == PtxKernel::ArgReduce
                          ? "grid-stride loop over the outputs"
                          : "grid-stride loop";
    std::string what(k.op->name());
    if (k.kind == PtxKernel::Reduce || k.kind == PtxKernel::ReduceStrided)
      what += fmt::format(" {} {}", k.op->str_attr("kind"), k.op->operand(0)->type.str());
    if (k.kind == PtxKernel::ArgReduce)
      what += fmt::format(" axis {} {}", k.op->int_attr("axis"), k.op->operand(0)->type.str());
    head += fmt::format("// kernel {}: {} -> {}: {} {}\n", k.name, what, k.op->result()->type.str(), how, k.signature);
  }
  if (!hostNames.empty()) {
    head += "// host:";
    for (size_t i = 0; i < hostNames.size(); ++i) head += (i ? ", " : " ") + hostNames[i];
    head += "\n";
  }
  result.ptx = head + ptx;
  return result;
}

std::string emitPtx(ir::Function& fn, const std::string& gpuArch) { return compilePtx(fn, gpuArch).ptx; }

// ---- the host emulator

namespace {

// One block of an emulated launch. Kernels without barriers or shuffles run their threads
// one after another; block reductions run each GPU thread as a fiber (Boost.Context) on
// the calling thread, switched at barriers and warp shuffles: a thread that reaches one
// waits until its block (or warp) has.
struct EmuBlock {
  enum State { Runnable, WaitBlock, WaitWarp, Done };
  unsigned ntid = 1, ctaid = 0, nctaid = 1;
  bool fibers = false;
  std::vector<uint32_t> slots;     // two per thread: shuffles alternate between them
  std::vector<uint32_t> shuffles;  // per thread: how many it has done
  std::vector<State> state;
  std::vector<boost::context::fiber> sinks;  // per thread: the way back to the scheduler
  unsigned blockArrived = 0;
  std::vector<unsigned> warpArrived;
};
thread_local EmuBlock* emuBlock = nullptr;
thread_local unsigned emuTid = 0;

uint32_t emuSreg(int32_t which) {
  switch (which) {
    case 0: return emuTid;
    case 1: return emuBlock->ntid;
    case 2: return emuBlock->ctaid;
    default: return emuBlock->nctaid;
  }
}

void emuWait(EmuBlock::State why) {
  EmuBlock& blk = *emuBlock;
  unsigned t = emuTid;
  blk.state[t] = why;
  blk.sinks[t] = std::move(blk.sinks[t]).resume();  // the scheduler resumes us with emuTid = t
}

void emuSync() {
  if (!emuBlock->fibers) {
    std::fputs("tdl: internal error: an emulated kernel synchronizes without fibers\n", stderr);
    std::abort();
  }
}

void emuWarpBarrier() {
  emuSync();
  EmuBlock& blk = *emuBlock;
  unsigned w = emuTid / 32, size = std::min(32u, blk.ntid - w * 32);
  if (++blk.warpArrived[w] == size) {
    blk.warpArrived[w] = 0;
    for (unsigned t = w * 32; t < w * 32 + size; ++t)
      if (blk.state[t] == EmuBlock::WaitWarp) blk.state[t] = EmuBlock::Runnable;
    return;
  }
  emuWait(EmuBlock::WaitWarp);
}

// A lane writes its value into the slot of this shuffle's parity, waits for its warp, and
// reads its partner's. No second wait is needed: a lane can write that parity's slot again
// only after the next shuffle's wait, which every lane reaches after its read.
uint32_t emuShfl(uint32_t v, int32_t laneMask) {
  EmuBlock& blk = *emuBlock;
  unsigned t = emuTid, parity = blk.shuffles[t]++ & 1u;
  blk.slots[2 * t + parity] = v;
  emuWarpBarrier();
  unsigned partner = (t & ~31u) | ((t & 31u) ^ static_cast<uint32_t>(laneMask));
  return blk.slots[2 * partner + parity];
}

void emuBarrier() {
  emuSync();
  EmuBlock& blk = *emuBlock;
  if (++blk.blockArrived == blk.ntid) {
    blk.blockArrived = 0;
    for (unsigned t = 0; t < blk.ntid; ++t)
      if (blk.state[t] == EmuBlock::WaitBlock) blk.state[t] = EmuBlock::Runnable;
    return;
  }
  emuWait(EmuBlock::WaitBlock);
}

// Fiber stacks, kept for the next block (a block reduction's 256 fibers would otherwise
// allocate and fault in 256 stacks per block).
struct PooledStack {
  static constexpr size_t kSize = 32 * 1024;
  static std::vector<void*>& pool() {
    thread_local std::vector<void*> p;
    return p;
  }
  boost::context::stack_context allocate() {
    void* p;
    if (pool().empty()) {
      p = std::malloc(kSize);
      if (!p) throw std::bad_alloc();
    } else {
      p = pool().back();
      pool().pop_back();
    }
    boost::context::stack_context sc;
    sc.size = kSize;
    sc.sp = static_cast<char*>(p) + kSize;
    return sc;
  }
  void deallocate(boost::context::stack_context& sc) noexcept {
    pool().push_back(static_cast<char*>(sc.sp) - sc.size);
  }
};

// Runs one block of `entry` (threads as fibers when `fibers`).
void emuRunBlock(EmuBlock& blk, void (*entry)(void**), void** params) {
  EmuBlock* saved = emuBlock;
  emuBlock = &blk;
  struct Restore {
    EmuBlock* s;
    ~Restore() { emuBlock = s; }
  } restore{saved};
  if (!blk.fibers) {
    for (unsigned t = 0; t < blk.ntid; ++t) {
      emuTid = t;
      entry(params);
    }
    return;
  }
  namespace bc = boost::context;
  blk.slots.assign(2 * blk.ntid, 0);
  blk.shuffles.assign(blk.ntid, 0);
  blk.state.assign(blk.ntid, EmuBlock::Runnable);
  blk.sinks.clear();
  blk.sinks.resize(blk.ntid);
  blk.warpArrived.assign((blk.ntid + 31) / 32, 0);
  blk.blockArrived = 0;
  std::vector<bc::fiber> fibers;
  fibers.reserve(blk.ntid);
  for (unsigned t = 0; t < blk.ntid; ++t)
    fibers.emplace_back(std::allocator_arg, PooledStack(), [&blk, t, entry, params](bc::fiber&& sink) {
      blk.sinks[t] = std::move(sink);
      entry(params);
      blk.state[t] = EmuBlock::Done;
      return std::move(blk.sinks[t]);
    });
  unsigned left = blk.ntid;
  while (left > 0) {
    bool ran = false;
    for (unsigned t = 0; t < blk.ntid; ++t) {
      if (blk.state[t] != EmuBlock::Runnable) continue;
      emuTid = t;
      fibers[t] = std::move(fibers[t]).resume();
      ran = true;
      if (blk.state[t] == EmuBlock::Done) --left;
    }
    if (!ran) {
      std::fputs("tdl: internal error: an emulated block deadlocked at a barrier\n", stderr);
      std::abort();
    }
  }
}

}  // namespace

struct HostKernelEmulator::Impl {
  std::unique_ptr<llvm::orc::LLJIT> jit;
  PtxModule mod;
  std::map<std::string, void (*)(void**)> entries;
};

HostKernelEmulator::HostKernelEmulator(const ir::Function& fn) : impl_(std::make_unique<Impl>()) {
  auto jit = makeHostJit();
  if (!jit) throw std::runtime_error("JIT: " + llvm::toString(jit.takeError()));
  impl_->jit = std::move(jit->jit);
  auto& J = *impl_->jit;
  auto ctx = std::make_unique<llvm::LLVMContext>();
  auto mod = std::make_unique<llvm::Module>("emu", *ctx);
  mod->setDataLayout(J.getDataLayout());
  mod->setTargetTriple(J.getTargetTriple().str());
  PtxLowering low(*ctx, *mod);
  low.emulate = true;
  buildKernels(fn, low, impl_->mod);
  // NAME__launch(ptr params): calls NAME with the values params[i] point to (cuLaunchKernel's way).
  auto& b = low.b;
  for (const PtxKernel& k : impl_->mod.kernels) {
    llvm::Function* kf = mod->getFunction(k.name);
    auto* ptrT = llvm::PointerType::getUnqual(*ctx);
    auto* wf = llvm::Function::Create(llvm::FunctionType::get(b.getVoidTy(), {ptrT}, false),
                                      llvm::Function::ExternalLinkage, k.name + "__launch", *mod);
    b.SetInsertPoint(llvm::BasicBlock::Create(*ctx, "entry", wf));
    std::vector<llvm::Value*> args;
    for (unsigned i = 0; i < kf->arg_size(); ++i) {
      llvm::Value* p = b.CreateLoad(ptrT, b.CreateConstGEP1_64(ptrT, wf->getArg(0), i));
      args.push_back(b.CreateLoad(kf->getFunctionType()->getParamType(i), p));
    }
    b.CreateCall(kf, args);
    b.CreateRetVoid();
  }
  std::string verr;
  llvm::raw_string_ostream vs(verr);
  if (llvm::verifyModule(*mod, &vs)) throw std::runtime_error("internal: invalid emulation IR: " + verr);
  llvm::orc::SymbolMap syms;
  auto def = [&](const char* name, void* addr) {
    syms[J.mangleAndIntern(name)] = {llvm::orc::ExecutorAddr::fromPtr(addr), llvm::JITSymbolFlags::Exported};
  };
  def("tdl_emu_sreg", reinterpret_cast<void*>(&emuSreg));
  def("tdl_emu_shfl", reinterpret_cast<void*>(&emuShfl));
  def("tdl_emu_barrier", reinterpret_cast<void*>(&emuBarrier));
  if (auto err = J.getMainJITDylib().define(llvm::orc::absoluteSymbols(std::move(syms))))
    throw std::runtime_error("JIT: " + llvm::toString(std::move(err)));
  if (auto err = J.addIRModule(llvm::orc::ThreadSafeModule(std::move(mod), std::move(ctx))))
    throw std::runtime_error("JIT: " + llvm::toString(std::move(err)));
  for (const PtxKernel& k : impl_->mod.kernels) {
    auto sym = J.lookup(k.name + "__launch");
    if (!sym) throw std::runtime_error("JIT: " + llvm::toString(sym.takeError()));
    impl_->entries[k.name] = sym->toPtr<void (*)(void**)>();
  }
}

HostKernelEmulator::~HostKernelEmulator() = default;

const std::vector<PtxKernel>& HostKernelEmulator::kernels() const { return impl_->mod.kernels; }

void HostKernelEmulator::launch(const std::string& name, const KernelLaunch& l) {
  std::vector<void*> params;
  for (const auto& a : l.args) params.push_back(const_cast<unsigned char*>(a.data()));
  launch(name, l.grid, l.block, params.data());
}

void HostKernelEmulator::launch(const std::string& name, unsigned grid, unsigned block, void** params) {
  auto it = impl_->entries.find(name);
  if (it == impl_->entries.end()) throw std::invalid_argument("no kernel " + name);
  bool sync = false;
  for (const PtxKernel& k : impl_->mod.kernels)
    if (k.name == name) sync = k.kind == PtxKernel::Reduce;
  for (unsigned c = 0; c < grid; ++c) {
    EmuBlock blk;
    blk.ntid = block;
    blk.ctaid = c;
    blk.nctaid = grid;
    blk.fibers = sync;
    emuRunBlock(blk, it->second, params);
  }
}

void HostKernelEmulator::launch(size_t k, const KernelLaunch& l) { launch(impl_->mod.kernels.at(k).name, l); }

std::vector<float> evalKernelMathF32(const std::string& op, const std::vector<float>& xs) {
  auto host = makeHostJit();
  if (!host) throw std::runtime_error("JIT: " + llvm::toString(host.takeError()));
  auto jit = std::move(host->jit);
  auto ctx = std::make_unique<llvm::LLVMContext>();
  auto mod = std::make_unique<llvm::Module>("math", *ctx);
  mod->setDataLayout(jit->getDataLayout());
  mod->setTargetTriple(jit->getTargetTriple().str());
  PtxLowering low(*ctx, *mod);
  auto& b = low.b;
  auto* ft = llvm::FunctionType::get(b.getFloatTy(), {b.getFloatTy()}, false);
  llvm::Function* f = llvm::Function::Create(ft, llvm::Function::ExternalLinkage, "tdl_math", *mod);
  b.SetInsertPoint(llvm::BasicBlock::Create(*ctx, "entry", f));
  llvm::Value* x = f->getArg(0);
  std::optional<rt::UnaryOp> u = rt::unary_by_name(op);
  llvm::Value* r = u ? low.em.emitUnary(*u, x, DType::F32, DType::F32) : nullptr;
  if (!r) throw std::invalid_argument("no kernel math for " + op);
  b.CreateRet(r);
  if (auto err = jit->addIRModule(llvm::orc::ThreadSafeModule(std::move(mod), std::move(ctx))))
    throw std::runtime_error("JIT: " + llvm::toString(std::move(err)));
  auto sym = jit->lookup("tdl_math");
  if (!sym) throw std::runtime_error("JIT: " + llvm::toString(sym.takeError()));
  auto* fp = sym->toPtr<float (*)(float)>();
  std::vector<float> out;
  out.reserve(xs.size());
  for (float v : xs) out.push_back(fp(v));
  return out;
}

}  // namespace tdl::codegen
