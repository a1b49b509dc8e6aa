// Lowering of optimized IR to LLVM IR, the O2 pipeline, and the JIT (a thin wrapper over
// ORC LLJIT, DESIGN habit 12) with two tiers (a fast first version, the optimized one made
// in the background: compile()). The only file of the project that includes LLVM headers.
//
// Structure of the generated code: one LLVM function per traced signature,
// `i32 NAME(ptr ctx)`. Every IR value has a slot; a `while` shares one set of slots
// between its inits, both regions' arguments and its results, so a loop iteration
// overwrites the same slots (bounded memory). Yields move a value when it has no other
// use, and an `update` whose tensor is dead afterwards takes its buffer (in place).
#include <chrono>
#include <condition_variable>
#include <future>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_set>

#include <fmt/format.h>

#include "codegen/Codegen.h"
#include "codegen/SharedCode.h"
#include "codegen/DiskCache.h"
#include "codegen/Exec.h"
#include "codegen/JitFactory.h"
#include "codegen/LlvmPasses.h"
#include "runtime/Matmul.h"
#include "codegen/ScalarEmit.h"
#include "ir/Printer.h"
#include "ir/Pass.h"
#include "runtime/Interrupt.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include <llvm/Config/llvm-config.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ObjectTransformLayer.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/MC/MCSubtargetInfo.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/TargetParser/Host.h>
#include <llvm/TargetParser/Triple.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>
#pragma GCC diagnostic pop

namespace tdl::codegen {

using rt::DType;

namespace {

// ------------------------------------------------------------------ analysis

// The chain of ops from `op` up to the function body: op, its parent op, ...
std::vector<const ir::Op*> ancestors(const ir::Op* op) {
  std::vector<const ir::Op*> r;
  for (const ir::Op* p = op; p; p = p->parent_op()) r.push_back(p);
  return r;
}

// Whether `use` certainly runs before `op` (or never in the same run of op's block).
bool runsBefore(const ir::Op* use, const ir::Op* op) {
  auto au = ancestors(use), ao = ancestors(op);
  for (const ir::Op* a : au)
    for (const ir::Op* b : ao) {
      if (a->parent() != b->parent()) continue;
      if (a != b) return a->parent()->index_of(a) < a->parent()->index_of(b);
      // Both inside one op a == b.
      if (a->kind() == ir::OpKind::While) return false;
      if (a->kind() == ir::OpKind::Cond) {
        // different regions never both run
        auto regionOf = [&](const ir::Op* inner) -> const ir::Region* {
          for (const ir::Op* p = inner; p; p = p->parent_op())
            if (p->parent_op() == a) return p->parent()->parent();
          return nullptr;
        };
        if (regionOf(use) != regionOf(op)) return true;
      }
      return false;
    }
  return false;
}

// Whether operand x of op is dead once op has run (so op may take its buffer).
bool deadAfter(const ir::Op& op, const ir::Value* x) {
  for (const ir::Op* p = op.parent_op(); p; p = p->parent_op())
    if (p->kind() == ir::OpKind::While && !ir::defined_inside(x, p)) return false;
  int self = 0;
  for (const ir::Use& u : x->uses()) {
    if (u.op == &op) {
      ++self;
      continue;
    }
    if (!runsBefore(u.op, &op)) return false;
  }
  return self == 1;
}

// ------------------------------------------------------------------ lowering

struct Lowering;

// CPU code's primitives: the C library's functions by the op's name (expf, log1p, erff,
// ...), the ones the eager kernels call, so both agree bit for bit; inside fused loops f32
// exp is the inline polynomial, so that the loops vectorize.
class CpuMath : public ScalarEmitter {
 public:
  CpuMath(llvm::IRBuilder<>& b, llvm::Module& m, Lowering& l) : ScalarEmitter(b), mod(m), low(l) {}
  llvm::Module& mod;
  Lowering& low;

 protected:
  V floatPrimitive(rt::UnaryOp op, V x) override;
  V floatPow(V a, V c) override { return libm("pow", {a, c}); }
  bool checkDivisor(V isZero) override;
  V libm(const char* base, std::vector<V> args) {
    llvm::Type* t = args[0]->getType();
    std::string name = std::string(base) + (t->isFloatTy() ? "f" : "");
    std::vector<llvm::Type*> ts(args.size(), t);
    return b_.CreateCall(mod.getOrInsertFunction(name, llvm::FunctionType::get(t, ts, false)), args);
  }
};

struct Lowering {
  CompiledFn& cf;
  llvm::LLVMContext& ctx;
  llvm::Module& mod;
  llvm::IRBuilder<> b;
  llvm::Function* fn = nullptr;
  llvm::Value* ctxArg = nullptr;
  llvm::BasicBlock* failBB = nullptr;
  llvm::FunctionCallee opFn, opGroupFn, opGroupBeginFn, opGroupEndFn, truthFn, moveFn, copyFn;
  std::unordered_set<const ir::Op*> grouped;  // products lowered with an earlier one (tdl_op_group)
  llvm::FunctionCallee fusedAllocFn, dataFn, parallelFn, parallelRowsFn, dimFn, reduceAllocFn, reduceRowsFn;
  llvm::FunctionCallee bindSymFn;
  llvm::FunctionCallee symGetFn, symSetFn;
  std::set<std::string> paramSyms;  // the symbols the parameters' dims bind (CompiledFn::run)
  std::set<std::string> boundSyms;  // the other symbols that ops lowered so far bind (program order)
  llvm::FunctionCallee bcastDimsFn, bcastStridesFn, fusedAllocDimsFn, reduceAllocDimsFn;
  int kernelCount = 0;
  llvm::FunctionCallee loadI64Fn, loadF64Fn, storeI64Fn, storeF64Fn, failFn, elemFn, updateElemFn, mutableDataFn;
  llvm::FunctionCallee profBeginFn, profEndFn, rowsScratchFn, profEndRowsFn;
  // --profile: times the native code of op (a fused or native loop) under its name and line.
  llvm::Value* profBegin() { return b.CreateCall(profBeginFn, {ctxArg}); }
  void profEnd(const ir::Op& op, llvm::Value* t0) { b.CreateCall(profEndFn, {ctxArg, i32(errorEntry(op)), t0}); }
  // Native loops (lowerWhile): the data and dims of the tensors they access, by slot,
  // loaded once before the loop.
  struct Hoisted {
    llvm::Value* data;
    std::vector<llvm::Value*> dims;
  };
  std::map<int, Hoisted> hoisted;
  std::map<const ir::Value*, int> slot;
  // Native scalars (DESIGN: rank-0 values live in registers): one alloca per value (mem2reg
  // turns them into SSA values); a while shares one between inits, region args and results.
  std::map<const ir::Value*, llvm::AllocaInst*> nat;
  llvm::BasicBlock* allocaBB = nullptr;
  llvm::AllocaInst* idxBuf = nullptr;  // [kMaxRank x i64] for element addresses

  Lowering(CompiledFn& c, llvm::LLVMContext& x, llvm::Module& m) : cf(c), ctx(x), mod(m), b(x), em(b, m, *this) {}
  // The elementwise math (ScalarEmit.h), with CPU code's primitives.
  CpuMath em;
  const ir::Op* curOp = nullptr;  // the op being lowered (for the error of a failing one)

  int newSlot() { return cf.numSlots++; }
  int slotOf(const ir::Value* v) {
    auto it = slot.find(v);
    if (it != slot.end()) return it->second;
    int s = newSlot();
    slot[v] = s;
    return s;
  }
  llvm::Value* i32(int v) { return b.getInt32(static_cast<uint32_t>(v)); }

  void declareAbi() {
    auto* ptr = llvm::PointerType::getUnqual(ctx);
    auto* i32t = b.getInt32Ty();
    auto* voidt = b.getVoidTy();
    opFn = mod.getOrInsertFunction("tdl_op", llvm::FunctionType::get(i32t, {ptr, i32t}, false));
    opGroupFn = mod.getOrInsertFunction("tdl_op_group", llvm::FunctionType::get(i32t, {ptr, ptr, i32t}, false));
    opGroupBeginFn =
        mod.getOrInsertFunction("tdl_op_group_begin", llvm::FunctionType::get(i32t, {ptr, ptr, i32t, i32t}, false));
    opGroupEndFn = mod.getOrInsertFunction(
        "tdl_op_group_end",
        llvm::FunctionType::get(i32t, {ptr, i32t, ptr, ptr, b.getInt64Ty(), b.getInt64Ty()}, false));
    truthFn = mod.getOrInsertFunction("tdl_truth", llvm::FunctionType::get(i32t, {ptr, i32t}, false));
    moveFn = mod.getOrInsertFunction("tdl_move", llvm::FunctionType::get(voidt, {ptr, i32t, i32t}, false));
    copyFn = mod.getOrInsertFunction("tdl_copy", llvm::FunctionType::get(voidt, {ptr, i32t, i32t}, false));
    auto* i64t = b.getInt64Ty();
    auto* f64t = b.getDoubleTy();
    loadI64Fn = mod.getOrInsertFunction("tdl_load_i64", llvm::FunctionType::get(i64t, {ptr, i32t}, false));
    loadF64Fn = mod.getOrInsertFunction("tdl_load_f64", llvm::FunctionType::get(f64t, {ptr, i32t}, false));
    storeI64Fn = mod.getOrInsertFunction("tdl_store_i64", llvm::FunctionType::get(voidt, {ptr, i32t, i32t, i64t}, false));
    storeF64Fn = mod.getOrInsertFunction("tdl_store_f64", llvm::FunctionType::get(voidt, {ptr, i32t, i32t, f64t}, false));
    failFn = mod.getOrInsertFunction("tdl_fail", llvm::FunctionType::get(voidt, {ptr, i32t, ptr}, false));
    elemFn = mod.getOrInsertFunction("tdl_elem", llvm::FunctionType::get(ptr, {ptr, i32t, ptr, i32t, i32t}, false));
    fusedAllocFn = mod.getOrInsertFunction("tdl_fused_alloc", llvm::FunctionType::get(i64t, {ptr, i32t, i32t, i32t, i32t}, false));
    dataFn = mod.getOrInsertFunction("tdl_data", llvm::FunctionType::get(ptr, {ptr, i32t}, false));
    parallelFn = mod.getOrInsertFunction("tdl_parallel_w", llvm::FunctionType::get(voidt, {ptr, ptr, i64t, i64t}, false));
    parallelRowsFn =
        mod.getOrInsertFunction("tdl_parallel_rows_w", llvm::FunctionType::get(voidt, {ptr, ptr, i64t, i64t, i64t}, false));
    reduceAllocFn = mod.getOrInsertFunction("tdl_reduce_alloc", llvm::FunctionType::get(i64t, {ptr, i32t, i32t, i32t, i32t, i32t}, false));
    reduceRowsFn = mod.getOrInsertFunction("tdl_parallel_reduce_rows", llvm::FunctionType::get(voidt, {ptr, ptr, i64t, i64t}, false));
    dimFn = mod.getOrInsertFunction("tdl_dim", llvm::FunctionType::get(i64t, {ptr, i32t, i32t}, false));
    bindSymFn = mod.getOrInsertFunction("tdl_bind_sym", llvm::FunctionType::get(voidt, {ptr, i32t, i32t, i32t}, false));
    symGetFn = mod.getOrInsertFunction("tdl_sym_get", llvm::FunctionType::get(i64t, {ptr, i32t}, false));
    symSetFn = mod.getOrInsertFunction("tdl_sym_set", llvm::FunctionType::get(voidt, {ptr, i32t, i64t}, false));
    bcastDimsFn = mod.getOrInsertFunction("tdl_bcast_dims", llvm::FunctionType::get(voidt, {ptr, ptr, i32t, i32t, ptr}, false));
    bcastStridesFn = mod.getOrInsertFunction("tdl_bcast_strides", llvm::FunctionType::get(voidt, {ptr, i32t, i32t, ptr}, false));
    fusedAllocDimsFn =
        mod.getOrInsertFunction("tdl_fused_alloc_dims", llvm::FunctionType::get(i64t, {ptr, i32t, i32t, i32t, ptr}, false));
    reduceAllocDimsFn = mod.getOrInsertFunction("tdl_reduce_alloc_dims",
                                                llvm::FunctionType::get(i64t, {ptr, i32t, i32t, i32t, i32t, i32t, ptr}, false));
    mutableDataFn = mod.getOrInsertFunction("tdl_mutable_data", llvm::FunctionType::get(ptr, {ptr, i32t, i32t}, false));
    profBeginFn = mod.getOrInsertFunction("tdl_prof_begin", llvm::FunctionType::get(i64t, {ptr}, false));
    profEndFn = mod.getOrInsertFunction("tdl_prof_end", llvm::FunctionType::get(voidt, {ptr, i32t, i64t}, false));
    rowsScratchFn = mod.getOrInsertFunction("tdl_parallel_rows_scratch",
                                            llvm::FunctionType::get(i32t, {ptr, ptr, i64t, i64t, i64t}, false));
    profEndRowsFn = mod.getOrInsertFunction("tdl_prof_end_rows", llvm::FunctionType::get(voidt, {ptr, i32t, i32t, i64t}, false));
    updateElemFn = mod.getOrInsertFunction(
        "tdl_update_elem", llvm::FunctionType::get(ptr, {ptr, i32t, i32t, i32t, ptr, i32t, i32t}, false));
  }

  // ---- native scalars

  static bool isNat(const ir::Value* v) { return v->type.dims.empty(); }
  static bool isFloat(DType d) { return d == DType::F32 || d == DType::F64; }
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
  llvm::AllocaInst* newAlloca(llvm::Type* t) {
    llvm::IRBuilder<> e(allocaBB, allocaBB->begin());
    return e.CreateAlloca(t);
  }
  llvm::AllocaInst* natOf(const ir::Value* v) {
    auto it = nat.find(v);
    if (it != nat.end()) return it->second;
    auto* a = newAlloca(ty(v->type.dtype));
    nat[v] = a;
    return a;
  }
  llvm::Value* get(const ir::Value* v) { return b.CreateLoad(ty(v->type.dtype), natOf(v)); }
  void set(const ir::Value* v, llvm::Value* x) { b.CreateStore(x, natOf(v)); }

  // x of dtype `from` as dtype `to`, with rt::cast's semantics.
  llvm::Value* convert(llvm::Value* x, DType from, DType to) { return em.convert(x, from, to); }

  // The slot of v, holding v's current value (native scalars are stored first).
  int materialize(const ir::Value* v) {
    int s = slotOf(v);
    if (!isNat(v)) return s;
    DType d = v->type.dtype;
    llvm::Value* x = get(v);
    if (isFloat(d)) b.CreateCall(storeF64Fn, {ctxArg, i32(s), i32(static_cast<int>(d)), b.CreateFPExt(x, b.getDoubleTy())});
    else b.CreateCall(storeI64Fn, {ctxArg, i32(s), i32(static_cast<int>(d)), convert(x, d, DType::I64)});
    return s;
  }
  // Loads native scalar v from its slot (after a runtime op produced it).
  void reload(const ir::Value* v) {
    DType d = v->type.dtype;
    int s = slotOf(v);
    if (isFloat(d)) set(v, b.CreateFPCast(b.CreateCall(loadF64Fn, {ctxArg, i32(s)}), ty(d)));
    else set(v, convert(b.CreateCall(loadI64Fn, {ctxArg, i32(s)}), DType::I64, d));
  }

  // An op-table entry (for the error's location only) and the failure branch.
  int errorEntry(const ir::Op& op) {
    OpEntry e;
    e.op = &op;
    int id = static_cast<int>(cf.ops.size());
    cf.ops.push_back(std::move(e));
    return id;
  }
  // if (bad) { tdl_fail(ctx, id, message); return 1 }
  void failIf(llvm::Value* bad, int id, const std::string& message) {
    auto* failHere = llvm::BasicBlock::Create(ctx, "err", fn);
    auto* next = llvm::BasicBlock::Create(ctx, "", fn);
    b.CreateCondBr(bad, failHere, next);
    b.SetInsertPoint(failHere);
    b.CreateCall(failFn, {ctxArg, i32(id), b.CreateGlobalStringPtr(message)});
    b.CreateBr(failBB);
    b.SetInsertPoint(next);
  }
  void failIfNull(llvm::Value* p) {
    auto* next = llvm::BasicBlock::Create(ctx, "", fn);
    b.CreateCondBr(b.CreateIsNull(p), failBB, next);
    b.SetInsertPoint(next);
  }
  // A runtime call's status: not 0 means its error is set (return 1).
  void failIfNonZero(llvm::Value* status) {
    auto* next = llvm::BasicBlock::Create(ctx, "", fn);
    b.CreateCondBr(b.CreateICmpNE(status, i32(0)), failBB, next);
    b.SetInsertPoint(next);
  }

  // Lowers an op on native scalars inline; false when it must go through the runtime.
  bool lowerNative(const ir::Op& op) {
    if (op.num_results() != 1 || !isNat(op.result())) return false;
    for (const ir::Value* v : op.operands())
      if (!isNat(v) && op.kind() != ir::OpKind::Index && op.kind() != ir::OpKind::Update) return false;
    if (op.kind() == ir::OpKind::Index || op.kind() == ir::OpKind::Update) return lowerElement(op);
    return lowerScalar(op);
  }
  // Op computed on one element: its operands' and result's values in their allocas
  // (get/set), whatever their shapes (a fused body, or per-row values of a row group).
  bool lowerScalar(const ir::Op& op) {
    const ir::Value* r = op.result();
    DType rd = r->type.dtype;
    if (op.kind() == ir::OpKind::Constant) {
      const rt::Tensor& t = op.tensor_attr("value");
      if (t.numel() != 1) return false;
      if (isFloat(rd)) set(r, llvm::ConstantFP::get(ty(rd), t.item_double(0)));
      else if (rd == DType::Bool) set(r, b.getInt1(t.item_bool(0)));
      else set(r, llvm::ConstantInt::getSigned(ty(rd), t.item_int64(0)));
      return true;
    }
    if (op.kind() == ir::OpKind::Cast) {
      set(r, convert(get(op.operand(0)), op.operand(0)->type.dtype, rd));
      return true;
    }
    if (op.kind() == ir::OpKind::Select) {
      const ir::Value *c = op.operand(0), *x = op.operand(1), *y = op.operand(2);
      llvm::Value* p = convert(get(c), c->type.dtype, DType::Bool);
      set(r, b.CreateSelect(p, convert(get(x), x->type.dtype, rd), convert(get(y), y->type.dtype, rd)));
      return true;
    }
    if (auto bop = ir::as_binary(op.kind())) return lowerBinary(op, *bop);
    if (auto uop = ir::as_unary(op.kind())) return lowerUnary(op, *uop);
    return false;
  }

  bool lowerBinary(const ir::Op& op, rt::BinaryOp k) {
    const ir::Value *x = op.operand(0), *y = op.operand(1), *r = op.result();
    curOp = &op;
    llvm::Value* out = em.emitBinary(k, get(x), x->type.dtype, get(y), y->type.dtype, r->type.dtype);
    if (!out) return false;
    set(r, out);
    return true;
  }

  bool lowerUnary(const ir::Op& op, rt::UnaryOp k) {
    const ir::Value *x = op.operand(0), *r = op.result();
    llvm::Value* out = em.emitUnary(k, get(x), x->type.dtype, r->type.dtype);
    if (!out) return false;
    set(r, out);
    return true;
  }

  // index(x, i...) / update(x, v, i...) of one element by native indices.
  bool lowerElement(const ir::Op& op) {
    bool upd = op.kind() == ir::OpKind::Update;
    const ir::Value* x = op.operand(0);
    size_t first = upd ? 2 : 1;
    size_t n = op.num_operands() - first;
    if (x->type.dims.size() != n) return false;
    for (size_t i = first; i < op.num_operands(); ++i)
      if (!isNat(op.operand(i))) return false;
    const ir::Value* r = op.result();
    DType d = x->type.dtype;
    if (n == 0) {  // a rank-0 tensor: the value itself (isNat(x))
      if (upd) {
        const ir::Value* v = op.operand(1);
        set(r, convert(get(v), v->type.dtype, d));
      } else {
        set(r, get(x));
      }
      return true;
    }
    if (upd) return false;  // the result is a tensor: lowerUpdateElem
    // x[i...] read again where an earlier identical read dominates: reuse its value (it
    // succeeded, and x is immutable).
    std::vector<const ir::Value*> key(op.operands().begin(), op.operands().end());
    auto seen = loads.find(key);
    if (seen != loads.end() && dominates(seen->second->def(), &op)) {
      set(r, get(seen->second));
      return true;
    }
    loads[key] = r;
    std::vector<llvm::Value*> idx;
    for (size_t i = 0; i < n; ++i) {
      const ir::Value* iv = op.operand(first + i);
      idx.push_back(convert(get(iv), iv->type.dtype, DType::I64));
    }
    int id = errorEntry(op);
    int xs = slotOf(x);
    llvm::Value* p = elemAddress(xs, idx, d, false, [&] {
      for (size_t i = 0; i < n; ++i) b.CreateStore(idx[i], b.CreateConstGEP1_32(b.getInt64Ty(), idxBuf, static_cast<unsigned>(i)));
      llvm::Value* q = b.CreateCall(elemFn, {ctxArg, i32(xs), idxBuf, i32(static_cast<int>(n)), i32(id)});
      failIfNull(q);
      return q;
    }, inbounds(op));
    set(r, loadElem(p, d));
    return true;
  }
  // Element reads by (tensor, indices), for reuse by a later identical read.
  std::map<std::vector<const ir::Value*>, const ir::Value*> loads;
  // Whether op a certainly ran before op b whenever b runs (a is in b's block or in an
  // enclosing one, earlier).
  static bool dominates(const ir::Op* a, const ir::Op* b) {
    for (const ir::Op* p = b; p; p = p->parent_op())
      if (p->parent() == a->parent()) return a->parent()->index_of(a) < a->parent()->index_of(p);
    return false;
  }

  bool inKernel = false;

  // The address of element slot[idx...] computed inline (NativeLayout) when every index is
  // in range (and, for a store, the buffer is unique); else `slow` emits the call that does
  // it (and reports an out-of-range index). Returns the address.
  // `inbounds`: every index is known to be in [0, size) (ir/passes/Loops.cpp).
  llvm::Value* elemAddress(int s, const std::vector<llvm::Value*>& idx, DType d, bool forStore,
                           const std::function<llvm::Value*()>& slow, bool inbounds = false) {
    const NativeLayout& L = nativeLayout();
    auto* ptrT = llvm::PointerType::getUnqual(ctx);
    auto* i64t = b.getInt64Ty();
    if (auto h = hoisted.find(s); h != hoisted.end()) return hoistedAddress(h->second, idx, d, slow, inbounds);
    if (!L.ok) return slow();
    auto at = [&](llvm::Value* base, int64_t off) { return b.CreateConstInBoundsGEP1_64(b.getInt8Ty(), base, static_cast<uint64_t>(off)); };
    llvm::Value* slots = b.CreateLoad(ptrT, at(ctxArg, L.ctxSlots));
    llvm::Value* tp = at(slots, static_cast<int64_t>(s) * L.tensorSize);
    llvm::Value* dims = b.CreateLoad(ptrT, at(tp, L.tensorDims));
    llvm::Value* st = b.CreateLoad(ptrT, at(tp, L.tensorStorage));
    llvm::Value* ok = b.CreateIsNotNull(st);
    llvm::Value* off = b.getInt64(0);
    for (size_t a = 0; a < idx.size(); ++a) {
      llvm::Value* size = b.CreateLoad(i64t, b.CreateConstInBoundsGEP1_64(i64t, dims, a));
      llvm::Value* i = idx[a];
      llvm::Value* ii = i;
      if (!inbounds) {
        ok = b.CreateAnd(ok, b.CreateAnd(b.CreateICmpSGE(i, b.CreateNeg(size)), b.CreateICmpSLT(i, size)));
        ii = b.CreateSelect(b.CreateICmpSLT(i, b.getInt64(0)), b.CreateAdd(i, size), i);
      }
      off = b.CreateAdd(b.CreateMul(off, size), ii);
    }
    auto* fastBB = llvm::BasicBlock::Create(ctx, "elem.fast", fn);
    auto* checkBB = forStore ? llvm::BasicBlock::Create(ctx, "elem.unique", fn) : nullptr;
    auto* slowBB = llvm::BasicBlock::Create(ctx, "elem.slow", fn);
    auto* mergeBB = llvm::BasicBlock::Create(ctx, "elem", fn);
    b.CreateCondBr(ok, forStore ? checkBB : fastBB, slowBB);
    if (forStore) {
      b.SetInsertPoint(checkBB);
      auto* refs = b.CreateAlignedLoad(i64t, at(st, L.storageRefs), llvm::Align(8));
      refs->setAtomic(llvm::AtomicOrdering::Acquire);
      b.CreateCondBr(b.CreateICmpEQ(refs, b.getInt64(1)), fastBB, slowBB);
    }
    b.SetInsertPoint(fastBB);
    llvm::Value* data = b.CreateLoad(ptrT, at(st, L.storageData));
    llvm::Value* p1 = b.CreateInBoundsGEP(b.getInt8Ty(), data, b.CreateMul(off, b.getInt64(rt::itemsize(d))));
    b.CreateBr(mergeBB);
    b.SetInsertPoint(slowBB);
    llvm::Value* p2 = slow();
    llvm::BasicBlock* slowEnd = b.GetInsertBlock();
    b.CreateBr(mergeBB);
    b.SetInsertPoint(mergeBB);
    llvm::PHINode* p = b.CreatePHI(ptrT, 2);
    p->addIncoming(p1, fastBB);
    p->addIncoming(p2, slowEnd);
    return p;
  }

  // An element of a tensor whose data and dims a native loop loaded before it: no loads
  // of the tensor's header, no uniqueness check (the loop made the buffer its own).
  llvm::Value* hoistedAddress(const Hoisted& h, const std::vector<llvm::Value*>& idx, DType d,
                              const std::function<llvm::Value*()>& slow, bool inbounds) {
    llvm::Value* off = b.getInt64(0);
    llvm::Value* ok = b.getTrue();
    for (size_t a = 0; a < idx.size(); ++a) {
      llvm::Value* size = h.dims[a];
      llvm::Value* i = idx[a];
      if (!inbounds) {
        ok = b.CreateAnd(ok, b.CreateAnd(b.CreateICmpSGE(i, b.CreateNeg(size)), b.CreateICmpSLT(i, size)));
        i = b.CreateSelect(b.CreateICmpSLT(i, b.getInt64(0)), b.CreateAdd(i, size), i);
      }
      off = a == 0 ? i : b.CreateAdd(b.CreateMul(off, size, "", true, true), i, "", true, true);
    }
    llvm::Value* p1 = b.CreateInBoundsGEP(elemTy(d), h.data, off);
    if (inbounds) return p1;
    auto* fastBB = b.GetInsertBlock();
    auto* slowBB = llvm::BasicBlock::Create(ctx, "elem.slow", fn);
    auto* mergeBB = llvm::BasicBlock::Create(ctx, "elem", fn);
    b.CreateCondBr(ok, mergeBB, slowBB);
    b.SetInsertPoint(slowBB);
    llvm::Value* p2 = slow();  // reports the index out of range
    llvm::BasicBlock* slowEnd = b.GetInsertBlock();
    b.CreateBr(mergeBB);
    b.SetInsertPoint(mergeBB);
    llvm::PHINode* p = b.CreatePHI(llvm::PointerType::getUnqual(ctx), 2);
    p->addIncoming(p1, fastBB);
    p->addIncoming(p2, slowEnd);
    return p;
  }
  // The in-memory type of an element (bool: one byte).
  llvm::Type* elemTy(DType d) { return d == DType::Bool ? b.getInt8Ty() : ty(d); }

  static bool inbounds(const ir::Op& op) {
    const bool* a = op.attr_as<bool>("inbounds");
    return a && *a;
  }

  llvm::Value* loadElem(llvm::Value* p, DType d) {
    if (d == DType::Bool) return b.CreateICmpNE(b.CreateLoad(b.getInt8Ty(), p), b.getInt8(0));
    return b.CreateLoad(ty(d), p);
  }
  void storeElem(llvm::Value* p, llvm::Value* v, DType d) {
    if (d == DType::Bool) b.CreateStore(b.CreateZExt(v, b.getInt8Ty()), p);
    else b.CreateStore(v, p);
  }

  // update(x, v, i...) of one element of a tensor x: in place when x is dead afterwards.
  bool lowerUpdateElem(const ir::Op& op) {
    const ir::Value* x = op.operand(0);
    const ir::Value* v = op.operand(1);
    size_t n = op.num_operands() - 2;
    if (isNat(x) || x->type.dims.size() != n || !isNat(v)) return false;
    for (size_t i = 2; i < op.num_operands(); ++i)
      if (!isNat(op.operand(i))) return false;
    std::vector<llvm::Value*> idx;
    for (size_t i = 0; i < n; ++i) {
      const ir::Value* iv = op.operand(2 + i);
      idx.push_back(convert(get(iv), iv->type.dtype, DType::I64));
    }
    bool dead = deadAfter(op, x);
    int src = slotOf(x);
    int dst;
    auto it = slot.find(op.result());
    if (it != slot.end()) dst = it->second;
    else if (dead) slot[op.result()] = dst = src;  // take x's slot: no move at all
    else dst = slotOf(op.result());
    int id = errorEntry(op);
    DType d = x->type.dtype;
    llvm::Value* val = convert(get(v), v->type.dtype, d);
    auto slow = [&] {
      for (size_t i = 0; i < n; ++i) b.CreateStore(idx[i], b.CreateConstGEP1_32(b.getInt64Ty(), idxBuf, static_cast<unsigned>(i)));
      llvm::Value* q = b.CreateCall(updateElemFn, {ctxArg, i32(dst), i32(src), i32(dead ? 1 : 0), idxBuf,
                                                   i32(static_cast<int>(n)), i32(id)});
      failIfNull(q);
      return q;
    };
    // In place without a call when x's slot is the result's and its buffer is unique.
    llvm::Value* p = dst == src ? elemAddress(dst, idx, d, true, slow, inbounds(op)) : slow();
    storeElem(p, val, d);
    return true;
  }

  void transfer(int dst, int src, bool move) { b.CreateCall(move ? moveFn : copyFn, {ctxArg, i32(dst), i32(src)}); }

  // Whether a yield may move operand v (an op result of the yield's block used only there).
  static bool movable(const ir::Op& y, const ir::Value* v) {
    if (v->is_block_arg() || v->block() != y.parent()) return false;
    return v->uses().size() == 1;
  }

  void lowerOp(const ir::Op& op) {
    switch (op.kind()) {
      case ir::OpKind::Cond: return lowerCond(op);
      case ir::OpKind::While: return lowerWhile(op);
      case ir::OpKind::Yield: return;  // by the parent
      case ir::OpKind::Return:
        for (const ir::Value* v : op.operands()) cf.resultSlots.push_back(materialize(v));
        b.CreateRet(i32(0));
        return;
      default: break;
    }
    if (op.kind() == ir::OpKind::Fused || op.kind() == ir::OpKind::FusedReduce) {
      llvm::Value* t0 = profBegin();
      if (op.kind() == ir::OpKind::Fused) lowerFused(op);
      else lowerFusedReduce(op);
      return profEnd(op, t0);
    }
    if (lowerNative(op)) return;
    if (op.kind() == ir::OpKind::Update && lowerUpdateElem(op)) return;
    failIfNonZero(b.CreateCall(opFn, {ctxArg, i32(hostEntry(op))}));
    for (size_t i = 0; i < op.num_results(); ++i)
      if (isNat(op.result(i))) reload(op.result(i));
  }

  // The OpEntry of a host op (its operand and result slots), by id.
  int hostEntry(const ir::Op& op) {
    OpEntry e;
    e.op = &op;
    for (const ir::Value* v : op.operands()) e.in.push_back(materialize(v));
    for (size_t i = 0; i < op.num_results(); ++i) {
      e.out.push_back(slotOf(op.result(i)));
      std::vector<int> syms;
      for (const ir::Dim& d : op.result(i)->type.dims) syms.push_back(d.is_symbolic() ? symIndex(d.sym) : -1);
      e.outSyms.push_back(std::move(syms));
    }
    if (op.kind() == ir::OpKind::Update && deadAfter(op, op.operand(0))) e.moveIn = 0;
    if (op.kind() == ir::OpKind::Gemm && op.num_operands() == 3 && deadAfter(op, op.operand(2))) e.moveIn = 2;
    // A tape's save of a value nothing reads after it (a loop's h_t, x_t): the stack takes it.
    if (op.kind() == ir::OpKind::StackPush && op.num_operands() == 2 && deadAfter(op, op.operand(1))) e.moveIn = 1;
    int id = static_cast<int>(cf.ops.size());
    cf.ops.push_back(std::move(e));
    return id;
  }

  // ---- independent products at once (tdl_op_group)

  // Whether op is a product that may join a group: a gemm or matmul of rank-2 float operands
  // of one dtype, not known to reach rt::kGroupMaxMacs multiply-adds nor to take the small-k
  // row kernel (rt::gemm_small_k; either is better split over the threads by itself). Its
  // multiply-adds where its shapes are static, else 1 (tdl_op_group measures them again and
  // runs the group one op after another when it is not worth it). 0: not one.
  static int64_t groupMacs(const ir::Op& op) {
    if (op.kind() != ir::OpKind::Gemm && op.kind() != ir::OpKind::MatMul) return 0;
    if (op.num_operands() < 2 || op.num_results() != 1) return 0;
    const ir::TensorType& a = op.operand(0)->type;
    const ir::TensorType& r = op.result()->type;
    if (a.dims.size() != 2 || op.operand(1)->type.dims.size() != 2 || r.dims.size() != 2) return 0;
    if (a.dtype != op.operand(1)->type.dtype || (a.dtype != DType::F32 && a.dtype != DType::F64)) return 0;
    const bool ta = op.kind() == ir::OpKind::Gemm && op.bool_attr("trans_a");
    const ir::Dim& k = a.dims[ta ? 0 : 1];
    if (k.is_known() && r.dims[1].is_known() && rt::gemm_small_k(r.dims[1].size, k.size)) return 0;
    if (!a.dims[0].is_known() || !a.dims[1].is_known() || !r.dims[1].is_known()) return 1;
    int64_t macs = a.dims[0].size * a.dims[1].size * r.dims[1].size;
    return macs < rt::kGroupMaxMacs ? std::max<int64_t>(macs, 1) : 0;
  }

  // An op that may stay in place while products after it join a group that runs before it:
  // one that cannot fail and has no effect (kPure: constants, shape ops, reductions, fused
  // loops, products), but no integer division (by zero) and no control flow.
  static bool staysBehind(const ir::Op& op) {
    if (!op.has_trait(ir::kPure) || op.has_trait(ir::kMayFail) || op.has_trait(ir::kHasEffect)) return false;
    if (op.num_regions() != 0 && op.kind() != ir::OpKind::Fused && op.kind() != ir::OpKind::FusedReduce) return false;
    switch (op.kind()) {
      case ir::OpKind::Div:
      case ir::OpKind::FloorDiv:
      case ir::OpKind::Mod:
      case ir::OpKind::Pow: {  // floats only: integers may divide by zero
        DType t = op.num_results() == 1 ? op.result()->type.dtype : DType::I64;
        return t == DType::F32 || t == DType::F64;
      }
      default: return true;
    }
  }

  // The products of blk that run at once with op i (tdl_op_group; empty: none): from op i
  // on, every product (groupMacs) that uses no result of an op from i on, across ops that
  // stay behind (run after the group: a GRU cell's gates between its products) and use
  // none of the joining products' operands (one of those may take over an operand that
  // dies at it); a product already in a group is skipped. With static shapes, only where
  // tdl_op_group would run it at once (rt::kGroupMinMacs).
  std::vector<const ir::Op*> findProductGroup(const ir::Block& blk, size_t i) {
    std::vector<const ir::Op*> g;
    int64_t first = groupMacs(blk.op(i));
    if (!first) return g;
    g.push_back(&blk.op(i));
    int64_t total = first, largest = first;
    std::unordered_set<const ir::Value*> after;  // results of the ops from i on
    after.insert(blk.op(i).result());
    std::vector<const ir::Op*> behind;
    for (size_t j = i + 1; j < blk.size() && j < i + 32; ++j) {
      const ir::Op& op = blk.op(j);
      if (grouped.count(&op)) continue;  // ran with an earlier group
      if (int64_t m = groupMacs(op)) {
        bool joins = true;
        for (const ir::Value* v : op.operands()) {
          if (after.count(v)) joins = false;
          for (const ir::Op* w : behind)
            for (const ir::Value* u : w->operands()) joins = joins && u != v;
        }
        if (joins) {
          g.push_back(&op);
          after.insert(op.result());
          total += m;
          largest = std::max(largest, m);
          continue;
        }
      }
      if (!staysBehind(op)) break;
      behind.push_back(&op);
      for (size_t r = 0; r < op.num_results(); ++r) after.insert(op.result(r));
    }
    if (g.size() < 2 || (total > static_cast<int64_t>(g.size()) && total - largest < rt::kGroupMinMacs)) g.clear();
    return g;
  }

  // The fused loop that may run with group g (op i of blk its first product) band by band
  // (tdl_op_group_begin/end), or null: the first fused op after the group's products that
  // reads a result of one elementwise, has the products' result type, runs over whole
  // elements (only operands of its shape and scalars: no rows, no broadcasting) and whose
  // other operands exist before the group or are constants (`early`: lowered before it);
  // the ops it moves before stay behind (pure, as findProductGroup's). A recurrent step's
  // tanh(x @ w + h @ u).
  const ir::Op* findGroupEpilogue(const ir::Block& blk, size_t i, const std::vector<const ir::Op*>& g,
                                  std::vector<const ir::Op*>& early) {
    std::unordered_set<const ir::Op*> members(g.begin(), g.end());
    std::unordered_set<const ir::Value*> results;
    for (const ir::Op* op : g) results.insert(op->result());
    const ir::TensorType& t = g[0]->result()->type;
    for (const ir::Op* op : g)
      if (!(op->result()->type == t)) return nullptr;
    size_t last = i;
    for (const ir::Op* op : g) last = std::max(last, blk.index_of(op));
    auto before = [&](const ir::Value* v) {  // defined before the group's first product
      const ir::Op* d = v->def();
      return !d || d->parent() != &blk || blk.index_of(d) < i;
    };
    std::vector<const ir::Op*> between;  // the ops the loop would move before
    for (size_t j = i + 1; j < blk.size() && j < last + 8; ++j) {
      const ir::Op& op = blk.op(j);
      if (members.count(&op)) continue;
      if (grouped.count(&op)) return nullptr;
      if (j > last && op.kind() == ir::OpKind::Fused && op.num_results() == 1 && op.result()->type == t) {
        bool reads = false, ok = true;
        early.clear();
        for (const ir::Value* v : op.operands()) {
          if (results.count(v)) reads = true;
          else if (v->def() && v->def()->kind() == ir::OpKind::Constant && !before(v)) early.push_back(v->def());
          else if (!before(v)) ok = false;
          ir::FusedOperand k = ir::fused_operand_kind(v->type, t);
          if (k != ir::FusedOperand::Full && k != ir::FusedOperand::Scalar) ok = false;
          // An op it moves before reading its operand: the loop's result may take the
          // operand's buffer where it dies (deadAfter counts that op's use as earlier).
          for (const ir::Op* w : between)
            for (const ir::Value* u : w->operands()) ok = ok && u != v;
        }
        if (ok && reads) return &op;
      }
      if (!staysBehind(op)) return nullptr;
      between.push_back(&op);
    }
    return nullptr;
  }

  llvm::Value* groupTable(const std::vector<const ir::Op*>& g) {
    std::vector<llvm::Constant*> ids;
    for (const ir::Op* op : g) {
      ids.push_back(b.getInt32(static_cast<uint32_t>(hostEntry(*op))));
      grouped.insert(op);
    }
    auto* arrTy = llvm::ArrayType::get(b.getInt32Ty(), ids.size());
    return new llvm::GlobalVariable(mod, arrTy, true, llvm::GlobalValue::PrivateLinkage,
                                    llvm::ConstantArray::get(arrTy, ids), "tdl.group");
  }

  void lowerProductGroup(const std::vector<const ir::Op*>& g) {
    llvm::Value* table = groupTable(g);
    failIfNonZero(b.CreateCall(opGroupFn, {ctxArg, table, i32(static_cast<int>(g.size()))}));
  }

  // Group g and the fused loop `epi` after it (findGroupEpilogue): begin stores the products'
  // result buffers, the loop's operands and result are set up as lowerFused does, and end
  // runs the products' bands, each followed by the loop over its elements.
  void lowerProductGroupEpilogue(const std::vector<const ir::Op*>& g, const ir::Op& epi,
                                 const std::vector<const ir::Op*>& early) {
    for (const ir::Op* k : early)
      if (!grouped.count(k)) {
        lowerOp(*k);
        grouped.insert(k);
      }
    llvm::Value* table = groupTable(g);
    grouped.insert(&epi);
    const int loop = errorEntry(epi);
    failIfNonZero(b.CreateCall(opGroupBeginFn, {ctxArg, table, i32(static_cast<int>(g.size())), i32(loop)}));
    lowerFused(epi, loop);
  }

  // ---- kernels of fused loops (fused, fused_reduce)
  // env[0] is the result's data, env[1 + j] operand j's data (a tensor) or value (a scalar,
  // stored in its own type), env[n + 1] the row length where a kernel has rows.

  llvm::Value* envWord(llvm::Value* env, size_t n, size_t i) {
    return b.CreateConstGEP2_32(llvm::ArrayType::get(b.getInt64Ty(), n + 2), env, 0, static_cast<unsigned>(i));
  }
  // Stores the operands' data pointers (tensors) and/or values (native scalars) in env.
  void storeEnvOperands(const ir::Op& op, llvm::Value* env, bool tensors, bool scalars) {
    size_t n = op.num_operands();
    for (size_t j = 0; j < n; ++j) {
      const ir::Value* v = op.operand(j);
      if (isNat(v)) {
        if (!scalars) continue;
        llvm::Value* x = get(v);
        if (v->type.dtype == DType::Bool) x = b.CreateZExt(x, b.getInt8Ty());
        b.CreateStore(x, envWord(env, n, j + 1));
      } else if (tensors) {
        b.CreateStore(b.CreateCall(dataFn, {ctxArg, i32(slotOf(v))}), envWord(env, n, j + 1));
      }
    }
  }

  // The enclosing function's lowering state while a kernel function is being built.
  struct KernelScope {
    llvm::Function* fn;
    llvm::BasicBlock* allocas;
    llvm::BasicBlock* fail;
    llvm::AllocaInst* idx;
    std::map<const ir::Value*, llvm::AllocaInst*> nat;
    llvm::IRBuilderBase::InsertPoint ip;
    llvm::Value *env = nullptr, *begin = nullptr, *end = nullptr;  // the new kernel's arguments
  };
  // Starts kernel `void NAME(ptr env, i64 begin, i64 end)`, the builder in its `pre` block.
  // With `scratch`: `void NAME(ptr env, i64 begin, i64 end, ptr scratch)`.
  KernelScope beginKernel(const char* what, bool scratch = false) {
    KernelScope s{fn, allocaBB, failBB, idxBuf, std::move(nat), b.saveIP()};
    nat.clear();
    auto* ptr = llvm::PointerType::getUnqual(ctx);
    auto* i64t = b.getInt64Ty();
    std::vector<llvm::Type*> params{ptr, i64t, i64t};
    if (scratch) params.push_back(ptr);
    auto* ft = llvm::FunctionType::get(b.getVoidTy(), params, false);
    fn = llvm::Function::Create(ft, llvm::Function::InternalLinkage,
                                fmt::format("{}_{}{}", s.fn->getName().str(), what, kernelCount++), mod);
    fn->addFnAttr(llvm::Attribute::NoUnwind);
    allocaBB = llvm::BasicBlock::Create(ctx, "allocas", fn);
    auto* pre = llvm::BasicBlock::Create(ctx, "pre", fn);
    failBB = nullptr;
    idxBuf = nullptr;
    inKernel = true;
    b.SetInsertPoint(allocaBB);
    b.CreateBr(pre);
    b.SetInsertPoint(pre);
    s.env = fn->getArg(0);
    s.begin = fn->getArg(1);
    s.end = fn->getArg(2);
    return s;
  }
  llvm::Function* endKernel(KernelScope& s) {
    llvm::Function* k = fn;
    inKernel = false;
    fn = s.fn;
    allocaBB = s.allocas;
    failBB = s.fail;
    idxBuf = s.idx;
    nat = std::move(s.nat);
    b.restoreIP(s.ip);
    return k;
  }
  // In a kernel: the native scalar operands become the body's arguments; returns the
  // tensor operands' data pointers (null for scalars).
  std::vector<llvm::Value*> loadKernelOperands(const ir::Op& op, llvm::Value* env) {
    size_t n = op.num_operands();
    const ir::Block& body = op.region(0).block();
    auto* ptr = llvm::PointerType::getUnqual(ctx);
    std::vector<llvm::Value*> data(n, nullptr);
    for (size_t j = 0; j < n; ++j) {
      const ir::Value* v = op.operand(j);
      if (isNat(v)) set(body.arg(j), loadElem(envWord(env, n, j + 1), v->type.dtype));
      else data[j] = b.CreateLoad(ptr, envWord(env, n, j + 1));
    }
    return data;
  }
  // One element of a fused body over `domain`: tensor operands read at `flat` (rows at
  // column i, columns at row o), the body lowered inline; returns the yielded value.
  const ir::Value* lowerElement(const ir::Op& op, const std::vector<llvm::Value*>& data, const ir::TensorType& domain,
                                llvm::Value* flat, llvm::Value* i, llvm::Value* o,
                                const std::vector<llvm::Value*>& bases = {}) {
    const ir::Block& body = op.region(0).block();
    for (size_t j = 0; j < data.size(); ++j)
      if (data[j]) {
        DType d = op.operand(j)->type.dtype;
        llvm::Type* et = d == DType::Bool ? b.getInt8Ty() : ty(d);
        llvm::Value* at = flat;
        switch (ir::fused_operand_kind(op.operand(j)->type, domain)) {
          case ir::FusedOperand::Row: at = i; break;
          case ir::FusedOperand::Col: at = o; break;
          case ir::FusedOperand::Full:
          case ir::FusedOperand::Scalar: break;
          case ir::FusedOperand::Strided:
            if (j >= bases.size() || !bases[j]) throw std::runtime_error("internal: a strided operand outside a rows loop");
            // Along the last axis the stride is 1, or 0 where the operand has size 1 there.
            at = lastBroadcast(op.operand(j)->type) ? bases[j] : b.CreateAdd(bases[j], i, "", true, true);
            break;
          case ir::FusedOperand::None: throw std::runtime_error("internal: a fused operand that does not broadcast");
        }
        set(body.arg(j), loadElem(b.CreateInBoundsGEP(et, data[j], at), d));
      }
    return lowerFusedBody(op);
  }
  // The ops of a fused body inline (its arguments set); returns the value it yields.
  const ir::Value* lowerFusedBody(const ir::Op& op) {
    const ir::Block& body = op.region(0).block();
    const ir::Op* y = nullptr;
    for (size_t k = 0; k < body.size(); ++k) {
      const ir::Op& x = body.op(k);
      if (x.kind() == ir::OpKind::Yield) y = &x;
      else if (!lowerNative(x)) throw std::runtime_error(fmt::format("internal: '{}' in a fused body", x.name()));
    }
    if (!y || y->num_operands() != 1) throw std::runtime_error("internal: a fused body must yield one value");
    return y->operand(0);
  }

  // Loop metadata on a loop's latch branch: the accesses of `parallel` (an access group)
  // carry no dependence across iterations; `keepLoop`: not unrolled, so that the vectorizer
  // sees a known short row as a loop (fully unrolled first, its copies were vectorized
  // across rows with gathers: [4096, 16] + [16] then relu 68 -> 9 us).
  void setLoopMetadata(llvm::Instruction* latch, llvm::MDNode* parallel, bool keepLoop) {
    std::vector<llvm::Metadata*> ops{nullptr};
    if (parallel)
      ops.push_back(llvm::MDNode::get(ctx, {llvm::MDString::get(ctx, "llvm.loop.parallel_accesses"), parallel}));
    if (keepLoop) ops.push_back(llvm::MDNode::get(ctx, {llvm::MDString::get(ctx, "llvm.loop.unroll.disable")}));
    if (ops.size() == 1) return;
    llvm::MDNode* self = llvm::MDNode::getDistinct(ctx, ops);
    self->replaceOperandWith(0, self);
    latch->setMetadata(llvm::LLVMContext::MD_loop, self);
  }
  static bool keepsRowLoop(const ir::Dim& last) { return last.is_known() && last.size >= 8; }

  // ---- strided operands (ir::FusedOperand::Strided): any NumPy broadcast to the domain
  // A fused loop with such operands runs as rows (all axes but the last) x columns; at each
  // row the kernel computes every strided operand's offset from the row index and the
  // domain's dims, and steps along the row by 1 (or 0 where the operand's last dim is 1).
  // env words after the row length (n + 1): the domain's dims, then each strided operand's
  // element strides along the domain's axes (tdl_bcast_dims, tdl_bcast_strides).
  struct Bcast {
    size_t rank = 0;
    std::vector<size_t> strided;  // operand indices
    int ref = -1;                 // the slot of an operand of the domain's shape, or -1
    bool envDims = false;         // whether env holds the dims (strided operands, or no ref)
    size_t words(size_t n) const { return n + 2 + (envDims ? rank * (1 + strided.size()) : 0); }
    size_t dimsAt(size_t n) const { return n + 2; }
    size_t stridesAt(size_t n, size_t k) const { return n + 2 + rank * (1 + k); }
  };
  static bool one(const ir::Dim& d) { return d.is_known() && d.size == 1; }
  static bool lastBroadcast(const ir::TensorType& x) { return x.dims.empty() || one(x.dims.back()); }
  Bcast bcastOf(const ir::Op& op, const ir::TensorType& domain) {
    Bcast bc;
    bc.rank = domain.dims.size();
    for (size_t j = 0; j < op.num_operands(); ++j) {
      const ir::Value* v = op.operand(j);
      ir::FusedOperand k = ir::fused_operand_kind(v->type, domain);
      if (k == ir::FusedOperand::Full && bc.ref < 0 && !isNat(v)) bc.ref = slotOf(v);
      if (k == ir::FusedOperand::Strided) bc.strided.push_back(j);
    }
    bc.envDims = !bc.strided.empty() || bc.ref < 0;
    return bc;
  }
  // Host side, before the kernel runs: the domain's dims and the strided operands' strides
  // into env (when bc.envDims).
  void storeBcastEnv(const ir::Op& op, const Bcast& bc, llvm::Value* env) {
    if (!bc.envDims) return;
    size_t n = op.num_operands();
    std::vector<int> slots;
    for (const ir::Value* v : op.operands())
      if (!isNat(v)) slots.push_back(slotOf(v));
    llvm::AllocaInst* sl = newAlloca(llvm::ArrayType::get(b.getInt32Ty(), std::max<size_t>(slots.size(), 1)));
    for (size_t k = 0; k < slots.size(); ++k)
      b.CreateStore(i32(slots[k]), b.CreateConstGEP2_32(sl->getAllocatedType(), sl, 0, static_cast<unsigned>(k)));
    b.CreateCall(bcastDimsFn, {ctxArg, sl, i32(static_cast<int>(slots.size())), i32(static_cast<int>(bc.rank)),
                               envWord(env, n, bc.dimsAt(n))});
    for (size_t k = 0; k < bc.strided.size(); ++k)
      b.CreateCall(bcastStridesFn, {ctxArg, i32(slotOf(op.operand(bc.strided[k]))), i32(static_cast<int>(bc.rank)),
                                    envWord(env, n, bc.stridesAt(n, k))});
  }
  // Host side: dim `axis` of the domain (from env when it holds the dims, else the ref's).
  llvm::Value* domainDim(const ir::Op& op, const Bcast& bc, llvm::Value* env, int axis) {
    size_t n = op.num_operands();
    if (bc.envDims) return b.CreateLoad(b.getInt64Ty(), envWord(env, n, bc.dimsAt(n) + static_cast<size_t>(axis)));
    return b.CreateCall(dimFn, {ctxArg, i32(bc.ref), i32(axis)});
  }
  // Kernel side: the dims (known ones as constants) and strides, loaded once per kernel.
  struct BcastVals {
    std::vector<llvm::Value*> dims;
    std::vector<std::vector<llvm::Value*>> strides;
  };
  BcastVals loadBcast(const ir::Op& op, const Bcast& bc, const ir::TensorType& domain, llvm::Value* env) {
    BcastVals v;
    if (bc.strided.empty()) return v;
    size_t n = op.num_operands();
    auto* i64t = b.getInt64Ty();
    for (size_t p = 0; p < bc.rank; ++p)
      v.dims.push_back(domain.dims[p].is_known() ? static_cast<llvm::Value*>(b.getInt64(domain.dims[p].size))
                                                 : b.CreateLoad(i64t, envWord(env, n, bc.dimsAt(n) + p)));
    for (size_t k = 0; k < bc.strided.size(); ++k) {
      // A stride is a constant when the operand's later dims are known (k-means' [N, 1, 2]:
      // 2, 0, 1), so that the vectorizer sees the access pattern.
      const ir::TensorType& x = op.operand(bc.strided[k])->type;
      size_t off = bc.rank - x.dims.size();
      std::vector<llvm::Value*> st;
      for (size_t p = 0; p < bc.rank; ++p) {
        std::optional<int64_t> known;
        if (p < off || one(x.dims[p - off])) {
          known = 0;
        } else {
          int64_t prod = 1;
          bool all = true;
          for (size_t m = p - off + 1; m < x.dims.size(); ++m) {
            all = all && x.dims[m].is_known();
            if (all) prod *= x.dims[m].size;
          }
          if (all) known = prod;
        }
        st.push_back(known ? static_cast<llvm::Value*>(b.getInt64(*known))
                           : b.CreateLoad(i64t, envWord(env, n, bc.stridesAt(n, k) + p)));
      }
      v.strides.push_back(std::move(st));
    }
    return v;
  }
  // At the start of row o: each strided operand's offset of the row's first element.
  std::vector<llvm::Value*> rowBases(const ir::Op& op, const Bcast& bc, const BcastVals& v, llvm::Value* o) {
    std::vector<llvm::Value*> bases(op.num_operands(), nullptr);
    if (bc.strided.empty()) return bases;
    std::vector<llvm::Value*> coord(bc.rank, nullptr);
    llvm::Value* rest = o;
    for (size_t p = bc.rank - 1; p-- > 0;) {
      coord[p] = p == 0 ? rest : b.CreateURem(rest, v.dims[p]);
      if (p > 0) rest = b.CreateUDiv(rest, v.dims[p]);
    }
    for (size_t k = 0; k < bc.strided.size(); ++k) {
      llvm::Value* at = b.getInt64(0);
      for (size_t p = 0; p + 1 < bc.rank; ++p) at = b.CreateAdd(at, b.CreateMul(coord[p], v.strides[k][p]));
      bases[bc.strided[k]] = at;
    }
    return bases;
  }

  // A fused op: one loop over the result's elements in a kernel function
  // `void K(ptr env, i64 begin, i64 end)`, run by tdl_parallel (split over the runtime's
  // pool above kFusedParallelThreshold elements). env[0] is the result's data, env[1 + j]
  // operand j's data (a tensor) or value (a scalar, stored in its own type).
  // groupLoop >= 0: the loop runs with the product group before it (tdl_op_group_end; the
  // loop's op-table entry).
  void lowerFused(const ir::Op& op, int groupLoop = -1) {
    const ir::Value* r = op.result();
    size_t n = op.num_operands();
    Bcast bc = bcastOf(op, r->type);
    int ref = bc.ref;
    bool rows = !bc.strided.empty() || (ref < 0 && r->type.dims.size() >= 2);
    for (const ir::Value* v : op.operands()) {
      ir::FusedOperand k = ir::fused_operand_kind(v->type, r->type);
      rows = rows || k == ir::FusedOperand::Row || k == ir::FusedOperand::Col;
    }
    // Buffer reuse by liveness: an operand of the result's shape and dtype that dies here
    // may lend its buffer to the result (each element is read before it is written at the
    // same index); tdl_fused_alloc takes it when no one else holds it.
    int donor = -1;
    for (const ir::Value* v : op.operands())
      if (donor < 0 && !isNat(v) && v->type.dtype == r->type.dtype &&
          ir::fused_operand_kind(v->type, r->type) == ir::FusedOperand::Full && deadAfter(op, v))
        donor = slotOf(v);
    int out = slotOf(r);
    llvm::AllocaInst* env = newAlloca(llvm::ArrayType::get(b.getInt64Ty(), bc.words(n)));
    storeBcastEnv(op, bc, env);
    llvm::Value* inner = b.getInt64(1);
    if (rows) {
      inner = domainDim(op, bc, env, static_cast<int>(r->type.dims.size()) - 1);
      b.CreateStore(inner, envWord(env, n, n + 1));
    }
    // The operands' data first: the donor's buffer may move to the result.
    storeEnvOperands(op, env, true, false);
    llvm::Value* count =
        ref >= 0 ? b.CreateCall(fusedAllocFn, {ctxArg, i32(out), i32(ref), i32(static_cast<int>(r->type.dtype)), i32(donor)})
                 : b.CreateCall(fusedAllocDimsFn, {ctxArg, i32(out), i32(static_cast<int>(r->type.dtype)),
                                                   i32(static_cast<int>(r->type.dims.size())), envWord(env, n, bc.dimsAt(n))});
    b.CreateStore(b.CreateCall(dataFn, {ctxArg, i32(out)}), envWord(env, n, 0));
    storeEnvOperands(op, env, false, true);
    llvm::Function* k = buildKernel(op, rows, bc);
    llvm::Value* weight = b.getInt64(static_cast<uint64_t>(loopWeight(op)));
    if (groupLoop >= 0) {  // with rows (findGroupEpilogue takes none) only the products, then the loop
      llvm::Value* kk = rows ? llvm::ConstantPointerNull::get(b.getPtrTy()) : static_cast<llvm::Value*>(k);
      failIfNonZero(b.CreateCall(opGroupEndFn, {ctxArg, i32(groupLoop), kk, env, rows ? b.getInt64(0) : count, weight}));
      if (!rows) return;
    }
    if (rows) b.CreateCall(parallelRowsFn, {k, env, count, inner, weight});
    else b.CreateCall(parallelFn, {k, env, count, weight});
  }

  // What an element of a fused loop costs in simple operations (an add: 1), which decides
  // whether the loop is split over the pool (fused_parallel): f32 tanh (inline, ~1 ns) 32,
  // f32 exp (inline) 8, a libm call 64, a division or square root 4.
  static int64_t loopWeight(const ir::Op& fused) {
    int64_t w = 0;
    const ir::Block& body = fused.region(0).block();
    for (size_t i = 0; i < body.size(); ++i) {
      const ir::Op& op = body.op(i);
      const bool f32 = op.num_results() == 1 && op.result()->type.dtype == DType::F32;
      switch (op.kind()) {
        case ir::OpKind::Yield: break;
        case ir::OpKind::Tanh: w += f32 ? 32 : 64; break;
        case ir::OpKind::Exp: w += f32 ? 8 : 64; break;
        case ir::OpKind::Expm1: case ir::OpKind::Log: case ir::OpKind::Log1p: case ir::OpKind::Log2:
        case ir::OpKind::Log10: case ir::OpKind::Sin: case ir::OpKind::Cos: case ir::OpKind::Erf:
        case ir::OpKind::Pow: w += 64; break;
        case ir::OpKind::Sigmoid: case ir::OpKind::Silu: w += 12; break;
        case ir::OpKind::Softplus: w += 72; break;
        case ir::OpKind::Div: case ir::OpKind::Sqrt: case ir::OpKind::Rsqrt: w += 4; break;
        default: w += 1;
      }
    }
    return std::max<int64_t>(w, 1);
  }

  // A fused_reduce: the domain (operand 0's shape) viewed as rows x its last axis; each row
  // of the loop accumulates its elements in f64 (as the runtime's reductions do for f32)
  // and stores the row's sum or mean (last-axis form: rows split over the pool), or one
  // accumulator runs over all rows and stores once (all-axes form, on the calling thread).
  // env[0] is the result's data, env[1 + j] operand j's, env[n + 1] the row length.
  void lowerFusedReduce(const ir::Op& op) {
    const ir::Value* r = op.result();
    const ir::TensorType dom = ir::fused_domain(op);
    size_t n = op.num_operands();
    const auto& axes = op.ints_attr("axes");
    bool whole = static_cast<int64_t>(axes.size()) == dom.rank();  // all axes (else the last)
    Bcast bc = bcastOf(op, dom);
    int ref = bc.ref;
    llvm::AllocaInst* env = newAlloca(llvm::ArrayType::get(b.getInt64Ty(), bc.words(n)));
    storeBcastEnv(op, bc, env);
    llvm::Value* inner = domainDim(op, bc, env, static_cast<int>(dom.dims.size()) - 1);
    b.CreateStore(inner, envWord(env, n, n + 1));
    storeEnvOperands(op, env, true, true);
    int keep = op.bool_attr("keepdims") ? 1 : 0;
    llvm::Value* rowsN =
        ref >= 0 ? b.CreateCall(reduceAllocFn, {ctxArg, i32(slotOf(r)), i32(ref), i32(static_cast<int>(r->type.dtype)),
                                                i32(keep), i32(whole ? 1 : 0)})
                 : b.CreateCall(reduceAllocDimsFn, {ctxArg, i32(slotOf(r)), i32(static_cast<int>(r->type.dtype)), i32(keep),
                                                    i32(whole ? 1 : 0), i32(static_cast<int>(dom.dims.size())),
                                                    envWord(env, n, bc.dimsAt(n))});
    b.CreateStore(b.CreateCall(dataFn, {ctxArg, i32(slotOf(r))}), envWord(env, n, 0));
    llvm::Function* k = buildReduceKernel(op, whole, bc);
    if (whole) b.CreateCall(llvm::FunctionCallee(k->getFunctionType(), k), {env, b.getInt64(0), rowsN});
    else b.CreateCall(reduceRowsFn, {k, env, rowsN, inner});
    if (isNat(r)) reload(r);  // a scalar result lives in a register from here on
  }

  llvm::Function* buildReduceKernel(const ir::Op& op, bool whole, const Bcast& bc) {
    KernelScope scope = beginKernel("reduce");
    auto* ptr = llvm::PointerType::getUnqual(ctx);
    auto* i64t = b.getInt64Ty();
    auto* f64t = b.getDoubleTy();
    llvm::Value *env = scope.env, *begin = scope.begin, *end = scope.end;
    auto* rowHead = llvm::BasicBlock::Create(ctx, "row", fn);
    auto* loop = llvm::BasicBlock::Create(ctx, "loop", fn);
    auto* rowEnd = llvm::BasicBlock::Create(ctx, "row.end", fn);
    auto* exit = llvm::BasicBlock::Create(ctx, "exit", fn);
    size_t n = op.num_operands();
    const ir::TensorType dom = ir::fused_domain(op);
    const ir::Value* r = op.result();
    bool mean = op.str_attr("kind") == "mean";
    llvm::Value* outP = b.CreateLoad(ptr, envWord(env, n, 0));
    std::vector<llvm::Value*> data = loadKernelOperands(op, env);
    BcastVals bv = loadBcast(op, bc, dom, env);
    // A row length known at compile time is a constant: short rows (k-means' 2-D points)
    // unroll instead of looping.
    const ir::Dim& last = dom.dims.back();
    llvm::Value* inner = last.is_known() ? static_cast<llvm::Value*>(b.getInt64(last.size))
                                         : b.CreateLoad(i64t, envWord(env, n, n + 1));
    llvm::Value* zero = llvm::ConstantFP::get(f64t, 0.0);
    llvm::BasicBlock* entryOfRows = b.GetInsertBlock();
    b.CreateCondBr(b.CreateICmpSLT(begin, end), rowHead, exit);
    // rows o in [begin, end); columns c in [0, inner)
    b.SetInsertPoint(rowHead);
    llvm::PHINode* o = b.CreatePHI(i64t, 2);
    o->addIncoming(begin, entryOfRows);
    llvm::PHINode* carried = nullptr;  // whole: the accumulator across rows
    if (whole) {
      carried = b.CreatePHI(f64t, 2);
      carried->addIncoming(zero, entryOfRows);
    }
    llvm::Value* rowStart = whole ? static_cast<llvm::Value*>(carried) : zero;
    std::vector<llvm::Value*> bases = rowBases(op, bc, bv, o);
    llvm::BasicBlock* rowHeadEnd = b.GetInsertBlock();
    b.CreateCondBr(b.CreateICmpSGT(inner, b.getInt64(0)), loop, rowEnd);
    b.SetInsertPoint(loop);
    llvm::PHINode* i = b.CreatePHI(i64t, 2);
    i->addIncoming(b.getInt64(0), rowHeadEnd);
    llvm::PHINode* acc = b.CreatePHI(f64t, 2);
    acc->addIncoming(rowStart, rowHeadEnd);
    llvm::Value* flat = b.CreateAdd(b.CreateMul(o, inner, "", true, true), i, "", true, true);
    llvm::Value* val = b.CreateFPExt(get(lowerElement(op, data, dom, flat, i, o, bases)), f64t);
    llvm::FastMathFlags fmf;
    fmf.setAllowReassoc();  // the sum may be reordered (vectorized): SPEC §11's tolerance
    llvm::Value* sum = b.CreateFAdd(acc, val);
    llvm::cast<llvm::Instruction>(sum)->setFastMathFlags(fmf);
    acc->addIncoming(sum, b.GetInsertBlock());
    llvm::Value* next = b.CreateAdd(i, b.getInt64(1), "", true, true);
    i->addIncoming(next, b.GetInsertBlock());
    llvm::BasicBlock* loopEnd = b.GetInsertBlock();
    setLoopMetadata(b.CreateCondBr(b.CreateICmpSLT(next, inner), loop, rowEnd), nullptr, keepsRowLoop(last));
    b.SetInsertPoint(rowEnd);
    llvm::PHINode* rowAcc = b.CreatePHI(f64t, 2);
    rowAcc->addIncoming(rowStart, rowHeadEnd);
    rowAcc->addIncoming(sum, loopEnd);
    DType rd = r->type.dtype;
    llvm::Value* onext = b.CreateAdd(o, b.getInt64(1), "", true, true);
    if (!whole) {
      llvm::Value* res = mean ? b.CreateFDiv(rowAcc, b.CreateSIToFP(inner, f64t)) : static_cast<llvm::Value*>(rowAcc);
      storeElem(b.CreateInBoundsGEP(ty(rd), outP, o), b.CreateFPCast(res, ty(rd)), rd);
    } else {
      carried->addIncoming(rowAcc, rowEnd);
    }
    b.CreateCondBr(b.CreateICmpSLT(onext, end), rowHead, exit);
    o->addIncoming(onext, rowEnd);
    b.SetInsertPoint(exit);
    if (whole) {
      llvm::PHINode* total = b.CreatePHI(f64t, 2);
      total->addIncoming(zero, entryOfRows);
      total->addIncoming(rowAcc, rowEnd);
      llvm::Value* count = b.CreateSIToFP(b.CreateMul(b.CreateSub(end, begin), inner), f64t);
      llvm::Value* res = mean ? b.CreateFDiv(total, count) : static_cast<llvm::Value*>(total);
      storeElem(outP, b.CreateFPCast(res, ty(rd)), rd);
    }
    b.CreateRetVoid();
    return endKernel(scope);
  }

  // rows: the kernel runs rows [begin, end) of the result viewed as rows x its last axis
  // (env[n + 1] = the row length); else elements [begin, end).
  llvm::Function* buildKernel(const ir::Op& op, bool rows, const Bcast& bc) {
    KernelScope scope = beginKernel("fused");
    auto* ptr = llvm::PointerType::getUnqual(ctx);
    auto* i64t = b.getInt64Ty();
    llvm::Value *env = scope.env, *begin = scope.begin, *end = scope.end;
    llvm::BasicBlock* pre = b.GetInsertBlock();
    auto* loop = llvm::BasicBlock::Create(ctx, "loop", fn);
    auto* exit = llvm::BasicBlock::Create(ctx, "exit", fn);
    size_t n = op.num_operands();
    const ir::Value* r = op.result();
    llvm::Value* outP = b.CreateLoad(ptr, envWord(env, n, 0));
    std::vector<llvm::Value*> data = loadKernelOperands(op, env);
    BcastVals bv = loadBcast(op, bc, r->type, env);
    // Loops: flat i in [begin, end); or rows o in [begin, end), columns c in [0, inner).
    const ir::Dim* lastDim = r->type.dims.empty() ? nullptr : &r->type.dims.back();
    llvm::Value* inner = !rows ? nullptr
                         : lastDim && lastDim->is_known() ? static_cast<llvm::Value*>(b.getInt64(lastDim->size))
                                                          : b.CreateLoad(i64t, envWord(env, n, n + 1));
    llvm::PHINode* o = nullptr;
    llvm::BasicBlock* rowHead = nullptr;
    llvm::BasicBlock* rowLatch = nullptr;
    std::vector<llvm::Value*> bases;
    if (rows) {
      rowHead = llvm::BasicBlock::Create(ctx, "row", fn);
      rowLatch = llvm::BasicBlock::Create(ctx, "row.next", fn);
      b.CreateCondBr(b.CreateAnd(b.CreateICmpSLT(begin, end), b.CreateICmpSGT(inner, b.getInt64(0))), rowHead, exit);
      b.SetInsertPoint(rowHead);
      o = b.CreatePHI(i64t, 2);
      o->addIncoming(begin, pre);
      bases = rowBases(op, bc, bv, o);
      rowHead = b.GetInsertBlock();
      b.CreateBr(loop);
    } else {
      b.CreateCondBr(b.CreateICmpSLT(begin, end), loop, exit);
    }
    b.SetInsertPoint(loop);
    llvm::PHINode* i = b.CreatePHI(i64t, 2);
    i->addIncoming(rows ? static_cast<llvm::Value*>(b.getInt64(0)) : begin, rows ? rowHead : pre);
    llvm::Value* flat = rows ? b.CreateAdd(b.CreateMul(o, inner, "", true, true), i, "", true, true) : i;
    const ir::Value* y = lowerElement(op, data, r->type, flat, i, o, bases);
    DType rd = r->type.dtype;
    llvm::Value* val = convert(get(y), y->type.dtype, rd);
    llvm::Type* et = rd == DType::Bool ? b.getInt8Ty() : ty(rd);
    storeElem(b.CreateInBoundsGEP(et, outP, flat), val, rd);
    llvm::Value* next = b.CreateAdd(i, b.getInt64(1), "", true, true);
    i->addIncoming(next, b.GetInsertBlock());
    // Element i of the result depends only on element i (or its row's, column's) of the
    // operands, even when the result takes an operand's buffer (in place): the loop's
    // accesses carry no dependence, so the vectorizer needs no run-time overlap check
    // (which an in-place loop fails, falling back to scalar code).
    llvm::MDNode* group = llvm::MDNode::getDistinct(ctx, {});
    for (llvm::BasicBlock& bb : *fn)
      for (llvm::Instruction& inst : bb)
        if (llvm::isa<llvm::LoadInst>(inst) || llvm::isa<llvm::StoreInst>(inst))
          inst.setMetadata(llvm::LLVMContext::MD_access_group, group);
    if (rows) {
      setLoopMetadata(b.CreateCondBr(b.CreateICmpSLT(next, inner), loop, rowLatch), group, keepsRowLoop(*lastDim));
      b.SetInsertPoint(rowLatch);
      llvm::Value* onext = b.CreateAdd(o, b.getInt64(1), "", true, true);
      o->addIncoming(onext, rowLatch);
      b.CreateCondBr(b.CreateICmpSLT(onext, end), rowHead, exit);
    } else {
      setLoopMetadata(b.CreateCondBr(b.CreateICmpSLT(next, end), loop, exit), group, false);
    }
    b.SetInsertPoint(exit);
    b.CreateRetVoid();
    return endKernel(scope);
  }

  // ---- row groups: a softmax-like chain in one pass over memory
  // A run of consecutive ops that all work one row at a time on one domain D = [rows..., C]
  // (rank >= 2): reductions along D's last axis (reduce sum/mean/max/min of floats; a
  // fused_reduce), fused loops over D, and elementwise ops on per-row values (shape
  // [rows..., 1] or [rows...]). They run as one kernel, row by row: a row's intermediates stay
  // in cache (values of D's shape used only inside the group live in a row-sized scratch
  // buffer, per-row values in registers), so memory sees each input read once and each
  // result written once (softmax + cross entropy: five passes become one).

  struct RowGroup {
    std::vector<const ir::Op*> members;  // in block order
    std::vector<const ir::Op*> natOps;   // scalar constants between them, lowered first
    std::vector<ir::Dim> dom;
    std::set<const ir::Value*> results;  // the members' results
  };

  static bool rowShaped(const std::vector<ir::Dim>& d, const std::vector<ir::Dim>& dom) {
    size_t r = dom.size();
    if (d.size() + 1 == r) return std::equal(d.begin(), d.end(), dom.begin());
    if (d.size() != r) return false;
    return std::equal(d.begin(), d.end() - 1, dom.begin()) && d.back().is_known() && d.back().size == 1;
  }
  static bool lastAxisOnly(const ir::Op& op, size_t rank) {
    const auto& axes = op.ints_attr("axes");
    return axes.size() == 1 && axes[0] == static_cast<int64_t>(rank) - 1;
  }
  // The domain of a member that reduces or loops over D; nullopt for any other op.
  static std::optional<std::vector<ir::Dim>> rowDomain(const ir::Op& op) {
    if (op.num_results() != 1) return std::nullopt;
    std::vector<ir::Dim> d;
    if (op.kind() == ir::OpKind::Fused || op.kind() == ir::OpKind::FusedReduce) {
      // Strided operands and domains that are no operand's shape (a fused_reduce's: not
      // operand 0's) stay out of row groups.
      const ir::TensorType dom = ir::fused_domain(op);
      bool full = false;
      for (size_t j = 0; j < op.num_operands(); ++j) {
        ir::FusedOperand k = ir::fused_operand_kind(op.operand(j)->type, dom);
        if (k == ir::FusedOperand::Strided) return std::nullopt;
        full = full || (k == ir::FusedOperand::Full && (j == 0 || op.kind() == ir::OpKind::Fused));
      }
      if (!full) return std::nullopt;
    }
    if (op.kind() == ir::OpKind::Fused) {
      d = op.result()->type.dims;
    } else if (op.kind() == ir::OpKind::FusedReduce || op.kind() == ir::OpKind::Reduce) {
      d = op.operand(0)->type.dims;
      if (d.size() < 2 || !lastAxisOnly(op, d.size())) return std::nullopt;
      if (op.kind() == ir::OpKind::Reduce) {
        const std::string& k = op.str_attr("kind");
        DType x = op.operand(0)->type.dtype;
        if (!(k == "sum" || k == "mean" || k == "max" || k == "min") || !isFloat(x) || op.result()->type.dtype != x)
          return std::nullopt;
      }
    } else {
      return std::nullopt;
    }
    if (d.size() < 2 || (d.back().is_known() && d.back().size == 1)) return std::nullopt;
    return d;
  }
  // Whether op can join group g (its operands come from outside, or from g in a shape the
  // group keeps: a row value, or a value of D's shape).
  bool joinsRowGroup(const ir::Op& op, const RowGroup& g) {
    if (op.num_regions() > 1 || op.num_results() != 1) return false;
    auto fromGroup = [&](const ir::Value* v) { return g.results.count(v) > 0; };
    if (auto d = rowDomain(op)) {
      if (*d != g.dom) return false;
      for (const ir::Value* v : op.operands()) {
        switch (ir::fused_operand_kind(v->type, ir::TensorType(v->type.dtype, g.dom))) {
          case ir::FusedOperand::Scalar:
          case ir::FusedOperand::Full:
          case ir::FusedOperand::Col: continue;  // read at the row's column, or once per row
          case ir::FusedOperand::Row:
            if (!fromGroup(v)) continue;  // a row of an outside tensor, read at each column
            return false;
          default: return false;
        }
      }
      return true;
    }
    // An elementwise op on row values (or a fused loop of them).
    bool fusedRow = op.kind() == ir::OpKind::Fused;
    if (!rowShaped(op.result()->type.dims, g.dom) ||
        (!fusedRow && (!op.has_trait(ir::kElementwise) || !ir::is_fusable_scalar_op(op) || op.num_regions())))
      return false;
    bool inner = false;
    for (const ir::Value* v : op.operands()) {
      if (isNat(v)) continue;
      if (v->type.dims != op.result()->type.dims) return false;
      inner = inner || fromGroup(v);
    }
    return inner;
  }

  // The row group starting at op i of blk (none: no members).
  RowGroup findRowGroup(const ir::Block& blk, size_t i) {
    RowGroup g;
    auto d = rowDomain(blk.op(i));
    if (!d) return g;
    g.dom = *d;
    if (!joinsRowGroup(blk.op(i), g)) return g;
    g.members.push_back(&blk.op(i));
    g.results.insert(blk.op(i).result());
    std::vector<const ir::Op*> pending;
    for (size_t j = i + 1; j < blk.size(); ++j) {
      const ir::Op& op = blk.op(j);
      if (grouped.count(&op)) break;  // lowered already (with a product group)
      if (op.kind() == ir::OpKind::Constant && isNat(op.result()) && op.tensor_attr("value").numel() == 1) {
        pending.push_back(&op);
        continue;
      }
      if (!joinsRowGroup(op, g)) break;
      g.natOps.insert(g.natOps.end(), pending.begin(), pending.end());
      pending.clear();
      g.members.push_back(&op);
      g.results.insert(op.result());
    }
    // Worth it: two members at least, one a reduction, and an input of D's shape (the
    // reference for the sizes).
    bool reduces = false, ref = false;
    for (const ir::Op* m : g.members) {
      reduces = reduces || (m->kind() != ir::OpKind::Fused && rowDomain(*m));
      for (const ir::Value* v : m->operands()) ref = ref || (!g.results.count(v) && v->type.dims == g.dom);
    }
    if (g.members.size() < 2 || !reduces || !ref) g.members.clear();
    return g;
  }

  // Whether v (a member's result) is used by an op outside the group.
  static bool usedOutside(const ir::Value* v, const RowGroup& g) {
    for (const ir::Use& u : v->uses())
      if (std::find(g.members.begin(), g.members.end(), u.op) == g.members.end()) return true;
    return false;
  }

  // Emits for (i = 0; i < n; ++i) body(i, acc) with loop-carried values acc (init);
  // returns their values after the loop. The loop is marked parallel (its iterations touch
  // distinct elements; the accumulators are reductions the vectorizer recognizes).
  std::vector<llvm::Value*> rowLoop(llvm::Value* n, const std::vector<llvm::Value*>& init,
                                    const std::function<std::vector<llvm::Value*>(llvm::Value*, const std::vector<llvm::Value*>&)>& body) {
    auto* i64t = b.getInt64Ty();
    llvm::BasicBlock* pre = b.GetInsertBlock();
    auto* loop = llvm::BasicBlock::Create(ctx, "cols", fn);
    auto* exit = llvm::BasicBlock::Create(ctx, "cols.end", fn);
    b.CreateCondBr(b.CreateICmpSGT(n, b.getInt64(0)), loop, exit);
    b.SetInsertPoint(loop);
    llvm::PHINode* i = b.CreatePHI(i64t, 2);
    i->addIncoming(b.getInt64(0), pre);
    std::vector<llvm::PHINode*> acc;
    std::vector<llvm::Value*> accV;
    for (llvm::Value* v : init) {
      acc.push_back(b.CreatePHI(v->getType(), 2));
      acc.back()->addIncoming(v, pre);
      accV.push_back(acc.back());
    }
    std::vector<llvm::Value*> next = body(i, accV);
    llvm::Value* inext = b.CreateAdd(i, b.getInt64(1), "", true, true);
    llvm::BasicBlock* end = b.GetInsertBlock();
    i->addIncoming(inext, end);
    for (size_t k = 0; k < acc.size(); ++k) acc[k]->addIncoming(next[k], end);
    llvm::Instruction* br = b.CreateCondBr(b.CreateICmpSLT(inext, n), loop, exit);
    llvm::Metadata* par[] = {llvm::MDString::get(ctx, "llvm.loop.parallel_accesses"), rowAccessGroup};
    llvm::MDNode* self = llvm::MDNode::getDistinct(ctx, {nullptr, llvm::MDNode::get(ctx, par)});
    self->replaceOperandWith(0, self);
    br->setMetadata(llvm::LLVMContext::MD_loop, self);
    b.SetInsertPoint(exit);
    std::vector<llvm::Value*> out;
    for (size_t k = 0; k < acc.size(); ++k) {
      llvm::PHINode* p = b.CreatePHI(init[k]->getType(), 2);
      p->addIncoming(init[k], pre);
      p->addIncoming(next[k], end);
      out.push_back(p);
    }
    return out;
  }
  llvm::MDNode* rowAccessGroup = nullptr;

  struct RowStep {
    const ir::Op* rowOp = nullptr;      // an op on per-row values,
    std::vector<const ir::Op*> cols;  // or a pass over the columns
  };
  static std::vector<RowStep> planRowGroup(const RowGroup& g) {
    // The members in steps: consecutive members that go over the row's columns (fused loops
    // over D and reductions along its last axis) share one pass over the columns when none of
    // them reads a per-row value the pass itself computes (a reduction's result); a value of
    // D's shape computed in the pass is taken at the same column from a register. An op on
    // per-row values that needs nothing from the open pass is computed before it (softmax +
    // cross entropy: max | exp, sum | scale, cross entropy's sum: three passes instead of five).
    std::vector<RowStep> plan;
    std::set<const ir::Value*> inPass;  // results of the open pass (plan.back().cols)
    bool open = false;
    for (const ir::Op* m : g.members) {
      bool needsPass = false, needsPassRow = false;
      for (const ir::Value* v : m->operands())
        if (inPass.count(v)) {
          needsPass = true;
          needsPassRow = needsPassRow || v->type.dims != g.dom;
        }
      if (m->kind() == ir::OpKind::FusedReduce || m->kind() == ir::OpKind::Reduce ||
          (m->kind() == ir::OpKind::Fused && m->result()->type.dims == g.dom)) {
        if (!open || needsPassRow) {
          plan.push_back(RowStep{});
          inPass.clear();
          open = true;
        }
        plan.back().cols.push_back(m);
        inPass.insert(m->result());
      } else if (open && !needsPass) {
        plan.insert(plan.end() - 1, RowStep{m, {}});
      } else {
        plan.push_back(RowStep{m, {}});
        inPass.clear();
        open = false;
      }
    }
    return plan;
  }

  void lowerRowGroup(const RowGroup& g) {
    llvm::Value* t0 = profBegin();
    for (const ir::Op* c : g.natOps) lowerNative(*c);
    // The kernel's inputs: env[0] the row length, then one word per tensor read or
    // written (its data) and per native scalar (its value).
    std::vector<const ir::Value*> words;
    std::map<const ir::Value*, unsigned> wordOf;
    auto addWord = [&](const ir::Value* v) {
      if (wordOf.count(v)) return;
      wordOf[v] = static_cast<unsigned>(words.size() + 1);
      words.push_back(v);
    };
    int ref = -1;
    for (const ir::Op* m : g.members)
      for (const ir::Value* v : m->operands())
        if (!g.results.count(v)) {
          addWord(v);
          if (ref < 0 && v->type.dims == g.dom) ref = slotOf(v);
        }
    std::vector<const ir::Value*> outs;
    for (const ir::Op* m : g.members)
      if (usedOutside(m->result(), g)) {
        outs.push_back(m->result());
        addWord(m->result());
      }
    size_t rank = g.dom.size();
    auto dimOf = [&](size_t a) -> llvm::Value* {
      const ir::Dim& d = g.dom[a];
      if (d.is_known()) return b.getInt64(d.size);
      return b.CreateCall(dimFn, {ctxArg, i32(ref), i32(static_cast<int>(a))});
    };
    llvm::Value* inner = dimOf(rank - 1);
    llvm::Value* rows = b.getInt64(1);
    for (size_t a = 0; a + 1 < rank; ++a) rows = b.CreateMul(rows, dimOf(a));
    auto* envT = llvm::ArrayType::get(b.getInt64Ty(), words.size() + 1);
    llvm::AllocaInst* env = newAlloca(envT);
    auto word = [&](llvm::Value* e, unsigned k) { return b.CreateConstGEP2_32(envT, e, 0, k); };
    b.CreateStore(inner, word(env, 0));
    for (const ir::Value* r : outs) {
      const ir::TensorType& t = r->type;
      if (t.dims == g.dom)
        b.CreateCall(fusedAllocFn, {ctxArg, i32(slotOf(r)), i32(ref), i32(static_cast<int>(t.dtype)), i32(-1)});
      else
        b.CreateCall(reduceAllocFn, {ctxArg, i32(slotOf(r)), i32(ref), i32(static_cast<int>(t.dtype)),
                                     i32(t.dims.size() == rank ? 1 : 0), i32(0)});
    }
    for (const ir::Value* v : words) {
      if (isNat(v)) {
        llvm::Value* x = get(v);
        if (v->type.dtype == DType::Bool) x = b.CreateZExt(x, b.getInt8Ty());
        b.CreateStore(x, word(env, wordOf[v]));
      } else {
        b.CreateStore(b.CreateCall(dataFn, {ctxArg, i32(slotOf(v))}), word(env, wordOf[v]));
      }
    }
    // Scratch: a row of each value of D's shape that stays inside the group.
    // (A value used only in the pass that computes it stays in a register.)
    const std::vector<RowStep> plan = planRowGroup(g);
    std::map<const ir::Value*, int64_t> scratchAt;  // byte offset in a chunk's scratch, per element of C
    int64_t perElem = 0;
    for (const RowStep& st : plan)
      for (const ir::Op* m : st.cols) {
        const ir::Value* r = m->result();
        if (r->type.dims != g.dom || usedOutside(r, g)) continue;
        bool later = false;
        for (const ir::Use& u : r->uses())
          later = later || std::find(st.cols.begin(), st.cols.end(), u.op) == st.cols.end();
        if (!later) continue;
        scratchAt[r] = perElem;
        perElem += 8;  // every dtype fits 8 bytes; keeps each row 8-byte aligned
      }
    llvm::Function* k = buildRowGroupKernel(g, plan, envT, wordOf, scratchAt);
    // A max/min over an empty last axis is the runtime's error: such a group runs op by op.
    llvm::BasicBlock* merge = nullptr;
    for (const ir::Op* m : g.members)
      if (m->kind() == ir::OpKind::Reduce && (m->str_attr("kind") == "max" || m->str_attr("kind") == "min")) {
        auto* slowBB = llvm::BasicBlock::Create(ctx, "rows.empty", fn);
        auto* fastBB = llvm::BasicBlock::Create(ctx, "rows", fn);
        merge = llvm::BasicBlock::Create(ctx, "rows.end", fn);
        b.CreateCondBr(b.CreateICmpEQ(inner, b.getInt64(0)), slowBB, fastBB);
        b.SetInsertPoint(slowBB);
        for (const ir::Op* x : g.members) lowerOp(*x);
        b.CreateBr(merge);
        b.SetInsertPoint(fastBB);
        break;
      }
    llvm::Value* bytes = b.CreateMul(inner, b.getInt64(perElem));
    llvm::Value* st = b.CreateCall(rowsScratchFn, {k, env, rows, inner, bytes});
    failIf(b.CreateICmpNE(st, i32(0)), errorEntry(*g.members.front()),
           "out of memory: cannot allocate the row buffers of a fused loop");
    if (merge) {
      b.CreateBr(merge);
      b.SetInsertPoint(merge);
    }
    b.CreateCall(profEndRowsFn, {ctxArg, i32(errorEntry(*g.members.front())), i32(errorEntry(*g.members.back())), t0});
  }

  llvm::Function* buildRowGroupKernel(const RowGroup& g, const std::vector<RowStep>& plan, llvm::ArrayType* envT, const std::map<const ir::Value*, unsigned>& wordOf,
                                      const std::map<const ir::Value*, int64_t>& scratchAt) {
    KernelScope scope = beginKernel("rows", true);
    auto* ptr = llvm::PointerType::getUnqual(ctx);
    auto* i64t = b.getInt64Ty();
    auto* f64t = b.getDoubleTy();
    llvm::Value *env = scope.env, *begin = scope.begin, *end = scope.end;
    llvm::Value* scratch = fn->getArg(3);
    rowAccessGroup = llvm::MDNode::getDistinct(ctx, {});
    auto word = [&](unsigned k) { return b.CreateConstGEP2_32(envT, env, 0, k); };
    llvm::Value* inner = g.dom.back().is_known() ? static_cast<llvm::Value*>(b.getInt64(g.dom.back().size))
                                                 : b.CreateLoad(i64t, word(0));
    std::map<const ir::Value*, llvm::Value*> data, scal;  // tensors' data; native scalars' values
    for (auto& [v, k] : wordOf) {
      if (isNat(v)) scal[v] = loadElem(word(k), v->type.dtype);
      else data[v] = b.CreateLoad(ptr, word(k));
    }
    for (auto& [v, off] : scratchAt)
      data[v] = b.CreateInBoundsGEP(b.getInt8Ty(), scratch, b.CreateMul(inner, b.getInt64(off)));
    llvm::BasicBlock* pre = b.GetInsertBlock();
    auto* rowHead = llvm::BasicBlock::Create(ctx, "row", fn);
    auto* exit = llvm::BasicBlock::Create(ctx, "exit", fn);
    b.CreateCondBr(b.CreateICmpSLT(begin, end), rowHead, exit);
    b.SetInsertPoint(rowHead);
    llvm::PHINode* o = b.CreatePHI(i64t, 2);
    o->addIncoming(begin, pre);
    std::map<const ir::Value*, llvm::Value*> rowVal;  // per-row values of this row
    // The value of operand v at column i of row o (i null: a per-row value).
    auto read = [&](const ir::Value* v, llvm::Value* i) -> llvm::Value* {
      if (isNat(v)) return scal.at(v);
      if (auto it = rowVal.find(v); it != rowVal.end()) return it->second;
      DType d = v->type.dtype;
      llvm::Value* at = o;  // a per-row value (i null, or a column [rows..., 1])
      if (i) switch (ir::fused_operand_kind(v->type, ir::TensorType(d, g.dom))) {
          case ir::FusedOperand::Full:
            at = scratchAt.count(v) ? i : b.CreateAdd(b.CreateMul(o, inner, "", true, true), i, "", true, true);
            break;
          case ir::FusedOperand::Row: at = i; break;  // a row broadcast over the leading axes
          default: break;
        }
      return loadElem(b.CreateInBoundsGEP(elemTy(d), data.at(v), at), d);
    };
    auto storeRow = [&](const ir::Value* r, llvm::Value* x) {
      rowVal[r] = x;
      if (data.count(r)) storeElem(b.CreateInBoundsGEP(elemTy(r->type.dtype), data.at(r), o), x, r->type.dtype);
    };
    std::map<const ir::Value*, llvm::Value*> colVal;  // values of D's shape at the pass's column
    // Operand v at column i: from a register where the pass computed it, else read.
    auto colRead = [&](const ir::Value* v, llvm::Value* i) {
      auto it = colVal.find(v);
      return it != colVal.end() ? it->second : read(v, i);
    };
    // The yielded value of fused member m at column i (in f64 for a fused_reduce).
    auto element = [&](const ir::Op* m, llvm::Value* i) -> llvm::Value* {
      const ir::Block& body = m->region(0).block();
      for (size_t j = 0; j < m->num_operands(); ++j) set(body.arg(j), colRead(m->operand(j), i));
      const ir::Value* y = lowerFusedBody(*m);
      return convert(get(y), y->type.dtype, m->kind() == ir::OpKind::FusedReduce ? DType::F64 : m->result()->type.dtype);
    };
    for (const RowStep& st : plan) {
      if (const ir::Op* m = st.rowOp) {
        const ir::Value* r = m->result();
        if (m->kind() == ir::OpKind::Fused) {  // a fused loop on row values
          const ir::Block& body = m->region(0).block();
          for (size_t j = 0; j < m->num_operands(); ++j) set(body.arg(j), read(m->operand(j), nullptr));
          const ir::Value* y = lowerFusedBody(*m);
          storeRow(r, convert(get(y), y->type.dtype, r->type.dtype));
          continue;
        }
        // An elementwise op on row values.
        for (const ir::Value* v : m->operands()) set(v, read(v, nullptr));
        if (!lowerScalar(*m)) throw std::runtime_error(fmt::format("internal: '{}' on row values", m->name()));
        storeRow(r, get(r));
        continue;
      }
      // One pass over the columns; the reductions' accumulators are carried by it: a sum in
      // f64 (reassociable: the vectorizer keeps partial sums), a max/min with whether a NaN
      // was seen.
      std::vector<llvm::Value*> init;
      std::vector<size_t> accAt;  // per member, its first accumulator
      for (const ir::Op* m : st.cols) {
        accAt.push_back(init.size());
        if (m->kind() == ir::OpKind::Fused) continue;
        if (m->kind() == ir::OpKind::Reduce && (m->str_attr("kind") == "max" || m->str_attr("kind") == "min")) {
          init.push_back(llvm::ConstantFP::getInfinity(ty(m->result()->type.dtype), m->str_attr("kind") == "max"));
          init.push_back(b.getFalse());
        } else {
          init.push_back(llvm::ConstantFP::get(f64t, 0.0));
        }
      }
      auto acc = rowLoop(inner, init, [&](llvm::Value* i, const std::vector<llvm::Value*>& a) {
        std::vector<llvm::Value*> next(a);
        colVal.clear();
        for (size_t q = 0; q < st.cols.size(); ++q) {
          const ir::Op* m = st.cols[q];
          const ir::Value* r = m->result();
          DType rd = r->type.dtype;
          size_t k = accAt[q];
          if (m->kind() == ir::OpKind::Fused) {
            llvm::Value* x = element(m, i);
            colVal[r] = x;
            if (data.count(r)) {
              llvm::Value* at = scratchAt.count(r) ? i : b.CreateAdd(b.CreateMul(o, inner, "", true, true), i, "", true, true);
              storeElem(b.CreateInBoundsGEP(elemTy(rd), data.at(r), at), x, rd);
            }
            continue;
          }
          llvm::FastMathFlags fmf;
          if (m->kind() == ir::OpKind::Reduce && (m->str_attr("kind") == "max" || m->str_attr("kind") == "min")) {
            // max/min: NaN wins and the empty row gives -inf/+inf, as rt::reduce (lanes_row):
            // `x > a ? x : a` (the max instruction; nnan/nsz let the vectorizer treat it as a
            // max reduction) and, on the side, whether a NaN was seen. A NaN makes the running
            // value poison under nnan, and the final select then takes NaN instead of it.
            bool mx = m->str_attr("kind") == "max";
            fmf.setNoNaNs();
            fmf.setNoSignedZeros();
            llvm::Value* v = colRead(m->operand(0), i);
            llvm::Value* take = mx ? b.CreateFCmpOGT(v, a[k]) : b.CreateFCmpOLT(v, a[k]);
            llvm::cast<llvm::Instruction>(take)->setFastMathFlags(fmf);
            next[k] = b.CreateSelect(take, v, a[k]);
            llvm::cast<llvm::Instruction>(next[k])->setFastMathFlags(fmf);
            next[k + 1] = b.CreateOr(a[k + 1], b.CreateFCmpUNO(v, v));
            continue;
          }
          fmf.setAllowReassoc();
          llvm::Value* x = m->kind() == ir::OpKind::FusedReduce ? element(m, i) : b.CreateFPExt(colRead(m->operand(0), i), f64t);
          next[k] = b.CreateFAdd(a[k], x);
          llvm::cast<llvm::Instruction>(next[k])->setFastMathFlags(fmf);
        }
        colVal.clear();
        return next;
      });
      for (size_t q = 0; q < st.cols.size(); ++q) {
        const ir::Op* m = st.cols[q];
        if (m->kind() == ir::OpKind::Fused) continue;
        const ir::Value* r = m->result();
        size_t k = accAt[q];
        const std::string& kind = m->str_attr("kind");
        if (m->kind() == ir::OpKind::Reduce && (kind == "max" || kind == "min")) {
          storeRow(r, b.CreateSelect(acc[k + 1], llvm::ConstantFP::getNaN(ty(r->type.dtype)), acc[k]));
          continue;
        }
        llvm::Value* res = acc[k];
        if (kind == "mean") res = b.CreateFDiv(res, b.CreateSIToFP(inner, f64t));
        storeRow(r, b.CreateFPCast(res, ty(r->type.dtype)));
      }
    }
    llvm::Value* onext = b.CreateAdd(o, b.getInt64(1), "", true, true);
    o->addIncoming(onext, b.GetInsertBlock());
    b.CreateCondBr(b.CreateICmpSLT(onext, end), rowHead, exit);
    b.SetInsertPoint(exit);
    b.CreateRetVoid();
    for (llvm::BasicBlock& bb : *fn)
      for (llvm::Instruction& inst : bb)
        if (llvm::isa<llvm::LoadInst>(inst) || llvm::isa<llvm::StoreInst>(inst))
          inst.setMetadata(llvm::LLVMContext::MD_access_group, rowAccessGroup);
    return endKernel(scope);
  }

  // The truth of a predicate value (bool[] native, or a slot).
  llvm::Value* truth(const ir::Value* p) {
    if (isNat(p)) return convert(get(p), p->type.dtype, DType::Bool);
    return b.CreateICmpNE(b.CreateCall(truthFn, {ctxArg, i32(slotOf(p))}), i32(0));
  }

  void lowerBlock(const ir::Block& blk) {
    for (size_t i = 0; i < blk.size(); ++i) {
      if (grouped.count(&blk.op(i))) continue;  // ran with an earlier product
      if (!inKernel) {
        std::vector<const ir::Op*> pg = findProductGroup(blk, i);
        if (!pg.empty()) {
          std::vector<const ir::Op*> early;
          if (const ir::Op* epi = findGroupEpilogue(blk, i, pg, early))
            lowerProductGroupEpilogue(pg, *epi, early);
          else lowerProductGroup(pg);
          continue;
        }
        RowGroup g = findRowGroup(blk, i);
        if (!g.members.empty()) {
          lowerRowGroup(g);
          i = blk.index_of(g.members.back());
          continue;
        }
      }
      lowerOp(blk.op(i));
      if (!inKernel) bindFreshSyms(blk.op(i));
      for (const ir::Value* r : blk.op(i).results())
        for (const ir::Dim& d : r->type.dims)
          if (d.is_symbolic() && !paramSyms.count(d.sym)) boundSyms.insert(d.sym);
    }
  }

  // The symbols bound before `op` (a while) that its regions bind again: a gradient's
  // backward loop rebinds the forward values' symbols iteration by iteration (the sizes of
  // the values it pops), which code after the loop must see as they were.
  void rebindingSyms(const ir::Block& blk, std::set<std::string>& out) const {
    for (size_t i = 0; i < blk.size(); ++i) {
      const ir::Op& o = blk.op(i);
      for (const ir::Value* r : o.results())
        for (const ir::Dim& d : r->type.dims)
          if (d.is_symbolic() && boundSyms.count(d.sym)) out.insert(d.sym);
      for (size_t k = 0; k < o.num_regions(); ++k) rebindingSyms(o.region(k).block(), out);
    }
  }

  // The sizes of the symbols (not the parameters') that the op's tensor results introduce,
  // from the tensors themselves (tdl_bind_sym), for the ops that read them from a type.
  void bindFreshSyms(const ir::Op& op) {
    for (const ir::Value* r : op.results()) bindSymsOf(r);
  }
  // The symbols (not the parameters') of tensor value v's type: its sizes now.
  void bindSymsOf(const ir::Value* v) {
    if (isNat(v)) return;
    for (size_t a = 0; a < v->type.dims.size(); ++a) {
      const ir::Dim& d = v->type.dims[a];
      if (!d.is_symbolic() || paramSyms.count(d.sym)) continue;
      if (int k = symIndex(d.sym); k >= 0)
        b.CreateCall(bindSymFn, {ctxArg, i32(slotOf(v)), i32(static_cast<int>(a)), i32(k)});
    }
  }

  // The index of symbol `sym` in the function's (CompiledFn::syms, ExecCtx::syms), or -1.
  int symIndex(const std::string& sym) const {
    for (size_t k = 0; k < cf.syms.size(); ++k)
      if (cf.syms[k] == sym) return static_cast<int>(k);
    return -1;
  }

  void lowerCond(const ir::Op& op) {
    size_t n = op.num_results();
    llvm::Value* p = truth(op.operand(0));
    auto* thenBB = llvm::BasicBlock::Create(ctx, "then", fn);
    auto* elseBB = llvm::BasicBlock::Create(ctx, "else", fn);
    auto* mergeBB = llvm::BasicBlock::Create(ctx, "endif", fn);
    b.CreateCondBr(p, thenBB, elseBB);
    // A tensor result takes the slot that both branches yield it in when each yielded value
    // dies at the yield (an element update chain stays in one buffer); else a fresh slot and
    // a move/copy at the end of each branch.
    std::vector<const ir::Op*> ys(2, nullptr);
    std::vector<llvm::BasicBlock*> ends(2, nullptr);
    for (int r = 0; r < 2; ++r) {
      b.SetInsertPoint(r == 0 ? thenBB : elseBB);
      const ir::Block& blk = op.region(static_cast<size_t>(r)).block();
      lowerBlock(blk);
      ys[static_cast<size_t>(r)] = blk.terminator();
      ends[static_cast<size_t>(r)] = b.GetInsertBlock();
    }
    for (size_t i = 0; i < n; ++i) {
      const ir::Value* res = op.result(i);
      if (isNat(res)) {
        for (int r = 0; r < 2; ++r) {
          b.SetInsertPoint(ends[static_cast<size_t>(r)]);
          const ir::Op* y = ys[static_cast<size_t>(r)];
          if (y && i < y->num_operands()) set(res, convert(get(y->operand(i)), y->operand(i)->type.dtype, res->type.dtype));
        }
        continue;
      }
      bool shared = ys[0] && ys[1] && i < ys[0]->num_operands() && i < ys[1]->num_operands() &&
                    movable(*ys[0], ys[0]->operand(i)) && movable(*ys[1], ys[1]->operand(i)) &&
                    slotOf(ys[0]->operand(i)) == slotOf(ys[1]->operand(i)) && !slot.count(res);
      if (shared) {
        slot[res] = slotOf(ys[0]->operand(i));
        continue;
      }
      int rs = slotOf(res);
      for (int r = 0; r < 2; ++r) {
        b.SetInsertPoint(ends[static_cast<size_t>(r)]);
        const ir::Op* y = ys[static_cast<size_t>(r)];
        if (y && i < y->num_operands()) transfer(rs, materialize(y->operand(i)), movable(*y, y->operand(i)));
      }
    }
    for (int r = 0; r < 2; ++r) {
      b.SetInsertPoint(ends[static_cast<size_t>(r)]);
      b.CreateBr(mergeBB);
    }
    b.SetInsertPoint(mergeBB);
  }

  // A native loop: every op of its regions is lowered inline (scalar ops, element reads,
  // element updates of its carried tensors in place), with no nested region. Its tensors'
  // data and dims are loaded once before it (the carried ones made unique), so the loop
  // body is plain loads and stores that LLVM can vectorize.
  bool nativeLoop(const ir::Op& w, std::vector<const ir::Value*>& outside) {
    for (size_t r = 0; r < 2; ++r) {
      const ir::Block& blk = w.region(r).block();
      for (size_t i = 0; i + 1 < blk.size(); ++i) {
        const ir::Op& o = blk.op(i);
        if (o.num_regions() > 0) return false;
        bool upd = o.kind() == ir::OpKind::Update;
        if (o.kind() == ir::OpKind::Index || upd) {
          const ir::Value* x = o.operand(0);
          size_t first = upd ? 2 : 1;
          if (isNat(x) || x->type.dims.size() != o.num_operands() - first) return false;
          for (size_t k = 1; k < o.num_operands(); ++k)
            if (!isNat(o.operand(k))) return false;
          if (upd) {
            // A carried tensor (or an update of one) in the body, dead after the update.
            if (r != 1 || !(x->is_block_arg() ? x->block() == &blk
                                               : x->def()->kind() == ir::OpKind::Update && x->block() == &blk))
              return false;
            if (!deadAfter(o, x)) return false;
          } else if (!x->is_block_arg() || x->block() != &blk) {
            if (ir::defined_inside(x, &w)) {
              if (x->def()->kind() != ir::OpKind::Update) return false;
            } else if (std::find(outside.begin(), outside.end(), x) == outside.end()) {
              outside.push_back(x);
            }
          }
          continue;
        }
        if (o.num_results() != 1 || !isNat(o.result())) return false;
        for (const ir::Value* v : o.operands())
          if (!isNat(v)) return false;
        bool inlineKind = o.kind() == ir::OpKind::Constant || o.kind() == ir::OpKind::Cast ||
                          o.kind() == ir::OpKind::Select || ir::as_binary(o.kind()) || ir::as_unary(o.kind());
        if (!inlineKind) return false;
      }
    }
    // Each carried tensor is yielded back in its own slot: the body's arg, or an update
    // chain from it.
    const ir::Block& body = w.region(1).block();
    const ir::Op* y = body.terminator();
    for (size_t i = 0; i < w.num_results(); ++i) {
      if (isNat(w.result(i))) continue;
      const ir::Value* v = y->operand(i);
      while (!v->is_block_arg() && v->def()->kind() == ir::OpKind::Update && v->block() == &body) v = v->def()->operand(0);
      if (v != body.arg(i)) return false;
    }
    return true;
  }

  Hoisted hoist(int s, const ir::Value* x, bool writes, int errId) {
    Hoisted h;
    h.data = writes ? b.CreateCall(mutableDataFn, {ctxArg, i32(s), i32(errId)}) : b.CreateCall(dataFn, {ctxArg, i32(s)});
    if (writes) failIfNull(h.data);
    for (size_t a = 0; a < x->type.dims.size(); ++a) {
      const ir::Dim& d = x->type.dims[a];
      h.dims.push_back(d.is_known() ? static_cast<llvm::Value*>(b.getInt64(d.size))
                                    : b.CreateCall(dimFn, {ctxArg, i32(s), i32(static_cast<int>(a))}));
    }
    return h;
  }

  // A notebook's interrupt (runtime/Interrupt.h): the loop stops with "interrupted" at its
  // line when the flag is set, and clears it.
  void interruptTest(const ir::Op& op) {
    auto* flagVar = mod.getOrInsertGlobal("tdl_interrupt_requested", b.getInt32Ty());
    auto* flag = b.CreateLoad(b.getInt32Ty(), flagVar, /*isVolatile=*/true);
    auto* stop = llvm::BasicBlock::Create(ctx, "interrupted", fn);
    auto* next = llvm::BasicBlock::Create(ctx, "", fn);
    b.CreateCondBr(b.CreateICmpNE(flag, i32(0)), stop, next);
    b.SetInsertPoint(stop);
    b.CreateStore(i32(0), flagVar, /*isVolatile=*/true);
    b.CreateCall(failFn, {ctxArg, i32(errorEntry(op)), b.CreateGlobalStringPtr(rt::kInterruptedMessage)});
    b.CreateBr(failBB);
    b.SetInsertPoint(next);
  }

  void lowerWhile(const ir::Op& op) {
    size_t n = op.num_results();
    std::vector<int> cs;
    for (size_t i = 0; i < n; ++i) {
      if (isNat(op.result(i))) {
        auto* a = newAlloca(ty(op.result(i)->type.dtype));
        nat[op.result(i)] = a;
        nat[op.region(0).block().arg(i)] = a;
        nat[op.region(1).block().arg(i)] = a;
        cs.push_back(-1);
        continue;
      }
      int s = newSlot();
      cs.push_back(s);
      slot[op.result(i)] = s;
      slot[op.region(0).block().arg(i)] = s;
      slot[op.region(1).block().arg(i)] = s;
    }
    std::vector<llvm::Value*> inits(n, nullptr);
    for (size_t i = 0; i < n; ++i)
      if (cs[i] < 0) inits[i] = convert(get(op.operand(i)), op.operand(i)->type.dtype, op.result(i)->type.dtype);
    for (size_t i = 0; i < n; ++i) {
      if (cs[i] < 0) set(op.result(i), inits[i]);
      else transfer(cs[i], slotOf(op.operand(i)), false);
    }
    std::vector<const ir::Value*> outside;
    std::vector<int> hoistedSlots;
    llvm::Value* t0 = nullptr;
    if (nativeLoop(op, outside)) {
      t0 = profBegin();
      int id = errorEntry(op);
      for (size_t i = 0; i < n; ++i)
        if (cs[i] >= 0) {
          hoisted[cs[i]] = hoist(cs[i], op.result(i), true, id);
          hoistedSlots.push_back(cs[i]);
        }
      for (const ir::Value* x : outside) {
        int s = materialize(x);
        if (hoisted.count(s)) continue;
        hoisted[s] = hoist(s, x, false, id);
        hoistedSlots.push_back(s);
      }
    }
    std::set<std::string> rebound;
    for (size_t r = 0; r < op.num_regions(); ++r) rebindingSyms(op.region(r).block(), rebound);
    std::vector<std::pair<int, llvm::Value*>> savedSyms;
    for (const std::string& sym : rebound)
      if (int k = symIndex(sym); k >= 0) savedSyms.emplace_back(k, b.CreateCall(symGetFn, {ctxArg, i32(k)}));
    auto* headBB = llvm::BasicBlock::Create(ctx, "while", fn);
    auto* bodyBB = llvm::BasicBlock::Create(ctx, "body", fn);
    auto* exitBB = llvm::BasicBlock::Create(ctx, "endwhile", fn);
    b.CreateBr(headBB);
    b.SetInsertPoint(headBB);
    const ir::Block& cb = op.region(0).block();
    lowerBlock(cb);
    b.CreateCondBr(truth(cb.terminator()->operand(0)), bodyBB, exitBB);
    b.SetInsertPoint(bodyBB);
    const ir::Block& bb = op.region(1).block();
    // A carried value's symbols (a size that may change from iteration to iteration) are
    // its size this iteration, for the ops that take a shape from a type naming them (a
    // reshape to [1, ?k] of it). Native loops carry fixed shapes.
    if (hoistedSlots.empty())
      for (const ir::Value* a : bb.args()) bindSymsOf(a);
    lowerBlock(bb);
    const ir::Op* y = bb.terminator();
    // Parallel copy through temporaries (a yield may permute the carried values).
    std::vector<std::pair<int, int>> moves;
    std::vector<llvm::Value*> next(n, nullptr);
    for (size_t i = 0; i < n; ++i)
      if (cs[i] < 0) next[i] = convert(get(y->operand(i)), y->operand(i)->type.dtype, op.result(i)->type.dtype);
    for (size_t i = 0; i < n; ++i)
      if (cs[i] < 0) set(op.result(i), next[i]);
    for (size_t i = 0; i < n; ++i) {
      if (cs[i] < 0) continue;
      int src = slotOf(y->operand(i));
      if (src == cs[i]) continue;
      int t = newSlot();
      transfer(t, src, movable(*y, y->operand(i)));
      moves.emplace_back(cs[i], t);
    }
    for (auto& [dst, t] : moves) transfer(dst, t, true);
    if (!ir::is_counted_while(op)) interruptTest(op);
    b.CreateBr(headBB);
    b.SetInsertPoint(exitBB);
    for (auto& [k, v] : savedSyms) b.CreateCall(symSetFn, {ctxArg, i32(k), v});
    for (int s : hoistedSlots) hoisted.erase(s);
    if (t0) profEnd(op, t0);
  }

  void run(const ir::Function& f, const std::string& name) {
    declareAbi();
    for (const ir::Value* p : f.params())
      for (const ir::Dim& d : p->type.dims)
        if (d.is_symbolic()) paramSyms.insert(d.sym);
    auto* ptr = llvm::PointerType::getUnqual(ctx);
    auto* ft = llvm::FunctionType::get(b.getInt32Ty(), {ptr}, false);
    fn = llvm::Function::Create(ft, llvm::Function::ExternalLinkage, name, mod);
    ctxArg = fn->getArg(0);
    allocaBB = llvm::BasicBlock::Create(ctx, "allocas", fn);
    auto* entry = llvm::BasicBlock::Create(ctx, "entry", fn);
    failBB = llvm::BasicBlock::Create(ctx, "fail", fn);
    b.SetInsertPoint(failBB);
    b.CreateRet(i32(1));
    b.SetInsertPoint(allocaBB);
    idxBuf = b.CreateAlloca(b.getInt64Ty(), b.getInt32(static_cast<uint32_t>(rt::kMaxRank)));
    b.CreateBr(entry);
    b.SetInsertPoint(entry);
    for (const ir::Value* p : f.params()) {
      cf.paramSlots.push_back(slotOf(p));
      if (isNat(p)) reload(p);
    }
    lowerBlock(f.entry());
    if (!b.GetInsertBlock()->getTerminator()) b.CreateRet(i32(0));
  }
};

// ------------------------------------------------------------------ the JIT

CpuMath::V CpuMath::floatPrimitive(rt::UnaryOp op, V x) {
  // f32 exp is TDL's own too (runtime/Libm.h exp_f32, as the eager kernels compute it), in kernels
  // and in scalar code alike: the same bits in every engine.
  if (op == rt::UnaryOp::Exp && x->getType()->isFloatTy()) return callExpF32(b_, mod, x);
  // f32 tanh is TDL's own (rt::tanh_f32, as the eager kernels compute it), inline: the same
  // bits, and loops of it vectorize.
  if (op == rt::UnaryOp::Tanh && x->getType()->isFloatTy()) return emitTanhF32(b_, x);
  return libm(std::string(rt::op_name(op)).c_str(), {x});
}

bool CpuMath::checkDivisor(V isZero) {
  if (low.inKernel || !low.curOp) return false;  // a fused loop cannot fail (Fusion keeps these out)
  low.failIf(isZero, low.errorEntry(*low.curOp), "division by zero");
  return true;
}

class Jit {
 public:
  static Jit& get() {
    static Jit j;
    return j;
  }
  ~Jit();
  llvm::orc::LLJIT& jit() { return *jit_; }
  llvm::TargetMachine* tm() { return tm_.get(); }
  std::string error;

 private:
  Jit() {
    auto h = makeHostJit();
    if (!h) {
      error = llvm::toString(h.takeError());
      return;
    }
    tm_ = std::move(h->tm);
    jit_ = std::move(h->jit);
    llvm::orc::SymbolMap syms;
    for (const AbiSymbol& s : abiSymbols())
      syms[jit_->mangleAndIntern(s.name)] = {llvm::orc::ExecutorAddr::fromPtr(s.addr), llvm::JITSymbolFlags::Exported};
    if (auto err = jit_->getMainJITDylib().define(llvm::orc::absoluteSymbols(std::move(syms))))
      error = llvm::toString(std::move(err));
  }

 private:
  std::unique_ptr<llvm::orc::LLJIT> jit_;
  std::unique_ptr<llvm::TargetMachine> tm_;
};

std::mutex jitMutex;
int symbolCounter = 0;

std::string symbolName(const ir::Function& f) {
  std::string s = "tdl_graph_";
  for (char c : f.name) s += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return s + "_" + std::to_string(symbolCounter++);
}

double msSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

namespace {

// Background compiles still running: the JIT outlives them (its destructor waits).
std::mutex inFlightMutex;
std::condition_variable inFlightDone;
int inFlight = 0;

struct Emitted {
  std::unique_ptr<CompiledFn> cf;
  std::string object;
  double lowerMs = 0, llvmMs = 0;
};

// Lowers fn into its own LLVM context, optimizes it (O2) and emits an object file with
// machine code generated at `level`; the function is named `name`. Touches no shared
// state, so it runs on any thread.
Emitted lowerAndEmit(ir::Function& fn, const std::string& name, llvm::CodeGenOptLevel level) {
  auto t0 = std::chrono::steady_clock::now();
  Emitted e;
  e.cf = std::make_unique<CompiledFn>();
  e.cf->fn = &fn;
  e.cf->syms = fn.syms;
  auto tm = makeHostTargetMachine(level);
  if (!tm) throw std::runtime_error("JIT: " + llvm::toString(tm.takeError()));
  llvm::LLVMContext ctx;
  llvm::Module mod("tdl", ctx);
  mod.setDataLayout((*tm)->createDataLayout());
  mod.setTargetTriple((*tm)->getTargetTriple().str());
  Lowering low(*e.cf, ctx, mod);
  low.run(fn, name);
  std::string verr;
  llvm::raw_string_ostream vs(verr);
  if (llvm::verifyModule(mod, &vs)) throw std::runtime_error("internal: invalid LLVM IR: " + verr);
  e.lowerMs = msSince(t0);
  auto t1 = std::chrono::steady_clock::now();
  optimizeModule(mod, tm->get());
  e.object = emitFile(mod, **tm, llvm::CodeGenFileType::ObjectFile, "this target cannot emit object files");
  e.llvmMs = msSince(t1);
  return e;
}

// Links an emitted object into the JIT (under jitMutex) and sets the version's entry.
void link(Jit& jit, Emitted& e, const std::string& name) {
  if (auto err = jit.jit().addObjectFile(llvm::MemoryBuffer::getMemBufferCopy(e.object, name)))
    throw std::runtime_error("JIT: " + llvm::toString(std::move(err)));
  auto sym = jit.jit().lookup(name);
  if (!sym) throw std::runtime_error("JIT: " + llvm::toString(sym.takeError()));
  e.cf->entry = sym->toPtr<int (*)(void*)>();
}

}  // namespace

Jit::~Jit() {
  std::unique_lock<std::mutex> l(inFlightMutex);
  inFlightDone.wait(l, [] { return inFlight == 0; });
}

// Two tiers (issue 17: a smaller pipeline for cold code): a compile-cache miss makes a
// first version whose machine code is generated without optimization (SelectionDAG and
// register allocation are most of the time: the MLP step's 190 ms become 70), and starts
// the optimized version on a background thread; tierUp swaps it in once it is ready, and
// only it is stored in the compile cache. Both run the same optimized LLVM IR, so they give
// the same results bit for bit.
std::unique_ptr<CompiledFn> compile(std::unique_ptr<ir::Module> module, ir::Function& fn, CompileTimes* times) {
  std::unique_lock<std::mutex> lock(jitMutex);
  auto t0 = std::chrono::steady_clock::now();
  DiskCache& cache = DiskCache::get();
  std::string key;
  if (cache.enabled()) {
    key = cache.key("llvm " LLVM_VERSION_STRING " O2\n" + ir::to_string(fn));
    if (auto cf = cache.load(key, fn)) {
      cf->module = std::move(module);
      if (times) {
        times->cached = true;
        times->lowerMs += msSince(t0);
      }
      return cf;
    }
  }
  Jit& jit = Jit::get();
  if (!jit.error.empty()) throw std::runtime_error("cannot start the JIT: " + jit.error);
  std::string name = symbolName(fn);
  lock.unlock();
  Emitted first = lowerAndEmit(fn, name + "_first", llvm::CodeGenOptLevel::None);
  lock.lock();
  link(jit, first, name + "_first");
  lock.unlock();
  if (times) {
    times->lowerMs += first.lowerMs;
    times->llvmMs += first.llvmMs;
  }
  first.cf->llvmMs = first.llvmMs;
  {
    std::lock_guard<std::mutex> l(inFlightMutex);
    ++inFlight;
  }
  first.cf->optimized = std::async(std::launch::async, [&fn, name, key, &jit]() -> std::unique_ptr<CompiledFn> {
    struct Done {
      ~Done() {
        std::lock_guard<std::mutex> l(inFlightMutex);
        --inFlight;
        inFlightDone.notify_all();
      }
    } done;
    Emitted e = lowerAndEmit(fn, name, llvm::CodeGenOptLevel::Default);
    std::lock_guard<std::mutex> l(jitMutex);
    link(jit, e, name);
    DiskCache& cache = DiskCache::get();
    if (cache.enabled()) cache.store(key, e.object, name, serializeTable(*e.cf));
    e.cf->llvmMs = e.llvmMs;
    return std::move(e.cf);
  });
  first.cf->module = std::move(module);
  return std::move(first.cf);
}


std::unique_ptr<CompiledFn> loadObject(std::unique_ptr<ir::Module> module, ir::Function& fn, const std::string& object,
                                       const std::string& entry, const std::string& table) {
  std::lock_guard<std::mutex> lock(jitMutex);
  Jit& jit = Jit::get();
  if (!jit.error.empty()) throw std::runtime_error("cannot start the JIT: " + jit.error);
  auto cf = std::make_unique<CompiledFn>();
  cf->fn = &fn;
  cf->syms = fn.syms;
  if (!restoreTable(*cf, table, fn)) throw std::runtime_error("its op table does not fit its IR");
  static int loads = 0;
  auto jd = jit.jit().createJITDylib("tdl_loaded_" + std::to_string(loads++));
  if (!jd) throw std::runtime_error("JIT: " + llvm::toString(jd.takeError()));
  jd->addToLinkOrder(jit.jit().getMainJITDylib());
  if (auto err = jit.jit().addObjectFile(*jd, llvm::MemoryBuffer::getMemBufferCopy(object, entry)))
    throw std::runtime_error("its object code does not link: " + llvm::toString(std::move(err)));
  auto sym = jit.jit().lookup(*jd, entry);
  if (!sym) throw std::runtime_error("its object code does not link: " + llvm::toString(sym.takeError()));
  cf->entry = sym->toPtr<int (*)(void*)>();
  cf->module = std::move(module);
  return cf;
}

std::string emitStage(ir::Function& fn, const std::string& stage) {
  Jit& jit = Jit::get();
  if (!jit.error.empty()) throw std::runtime_error("cannot start the JIT: " + jit.error);
  CompiledFn cf;
  cf.syms = fn.syms;
  llvm::LLVMContext ctx;
  llvm::Module mod("tdl", ctx);
  mod.setDataLayout(jit.jit().getDataLayout());
  mod.setTargetTriple(jit.jit().getTargetTriple().str());
  Lowering low(cf, ctx, mod);
  low.run(fn, symbolName(fn));
  optimizeModule(mod, jit.tm());
  std::string out;
  llvm::raw_string_ostream os(out);
  if (stage == "asm") {
    if (!jit.tm()) throw std::runtime_error("this target cannot emit assembly");
    return emitFile(mod, *jit.tm(), llvm::CodeGenFileType::AssemblyFile, "this target cannot emit assembly");
  }
  mod.print(os, nullptr);
  return out;
}

namespace {
void initNative() {
  static std::once_flag init;
  std::call_once(init, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    // Cross targets of `tdl build --target` (docs/edge.md).
    LLVMInitializeAArch64TargetInfo();
    LLVMInitializeAArch64Target();
    LLVMInitializeAArch64TargetMC();
    LLVMInitializeAArch64AsmPrinter();
  });
}

const llvm::Target* lookupTarget(const std::string& triple, std::string& why) {
  initNative();
  return llvm::TargetRegistry::lookupTarget(triple, why);
}
}  // namespace

bool knownTriple(const std::string& triple, std::string& why) { return lookupTarget(triple, why) != nullptr; }

bool validTargetCpu(const std::string& cpu, const std::string& tripleIn) {
  if (cpu == "generic") return true;
  if (cpu == "host") return tripleIn.empty() || tripleIn == llvm::sys::getProcessTriple();
  std::string triple = tripleIn.empty() ? llvm::sys::getProcessTriple() : tripleIn, why;
  const llvm::Target* target = lookupTarget(triple, why);
  if (!target) return false;
  std::unique_ptr<llvm::MCSubtargetInfo> sti(target->createMCSubtargetInfo(triple, "", ""));
  return sti && sti->isCPUStringValid(cpu);
}

std::string knownTargetCpus(const std::string& tripleIn) {
  std::string triple = tripleIn.empty() ? llvm::sys::getProcessTriple() : tripleIn, why, out;
  const llvm::Target* target = lookupTarget(triple, why);
  if (!target) return out;
  std::unique_ptr<llvm::MCSubtargetInfo> sti(target->createMCSubtargetInfo(triple, "", ""));
  if (!sti) return out;
  for (const llvm::SubtargetSubTypeKV& kv : sti->getAllProcessorDescriptions())
    out += (out.empty() ? "" : " ") + std::string(kv.Key);
  return out;
}

HostTarget hostTarget() {
  initNative();
  HostTarget h;
  h.triple = llvm::sys::getProcessTriple();
  h.cpu = llvm::sys::getHostCPUName().str();
  llvm::StringMap<bool> f = llvm::sys::getHostCPUFeatures();
  std::vector<std::string> names;
  for (auto& kv : f) names.push_back(std::string(kv.second ? "+" : "-") + kv.first().str());
  std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) { return a.substr(1) < b.substr(1); });
  for (auto& n : names) h.features += (h.features.empty() ? "" : ",") + n;
  return h;
}

HostTarget targetOf(const std::string& tripleIn, const std::string& cpu) {
  initNative();
  std::string host = llvm::sys::getProcessTriple();
  if ((tripleIn.empty() || tripleIn == host) && cpu == "host") return hostTarget();
  HostTarget t;
  t.triple = tripleIn.empty() ? host : llvm::Triple::normalize(tripleIn);
  // As compileAot names it: "generic" on this machine is the x86-64 baseline.
  t.cpu = cpu == "generic" && (tripleIn.empty() || tripleIn == host) ? std::string("x86-64") : cpu;
  std::string why;
  const llvm::Target* target = lookupTarget(t.triple, why);
  if (!target) return t;
  std::unique_ptr<llvm::MCSubtargetInfo> sti(target->createMCSubtargetInfo(t.triple, t.cpu, ""));
  if (!sti) return t;
  for (const llvm::SubtargetFeatureKV& kv : sti->getAllProcessorFeatures())
    if (sti->checkFeatures(std::string("+") + kv.Key)) t.features += (t.features.empty() ? "+" : ",+") + std::string(kv.Key);
  return t;
}

bool hostRuns(const std::string& triple, const std::string& features, std::string& why) {
  HostTarget h = hostTarget();
  if (triple != h.triple) {
    why = "it was compiled for " + triple + ", this machine is " + h.triple;
    return false;
  }
  std::vector<std::string> hostList = enabledFeatures(h.features);
  std::set<std::string> have(hostList.begin(), hostList.end());
  std::string missing;
  for (const std::string& f : enabledFeatures(features))
    if (!have.count(f)) missing += (missing.empty() ? "" : ", ") + f;
  if (!missing.empty()) {
    why = "this CPU lacks " + missing;
    return false;
  }
  return true;
}

AotResult compileAot(ir::Function& fn, const AotOptions& o) {
  initNative();
  if (!validTargetCpu(o.cpu, o.triple)) throw std::runtime_error("unknown --target-cpu '" + o.cpu + "'");
  bool cross = !o.triple.empty() && o.triple != llvm::sys::getProcessTriple();
  std::string triple = cross ? o.triple : llvm::sys::getProcessTriple();
  std::string why;
  const llvm::Target* target = llvm::TargetRegistry::lookupTarget(triple, why);
  if (!target) throw std::runtime_error("no target for " + triple + ": " + why);
  std::string cpu = o.cpu, features;
  if (cross) {
    // "generic": the target's baseline (AArch64: armv8-a); a named CPU: its features.
  } else if (cpu == "host") {
    cpu = llvm::sys::getHostCPUName().str();
    llvm::StringMap<bool> f = llvm::sys::getHostCPUFeatures();
    for (auto& kv : f) features += (features.empty() ? "" : ",") + std::string(kv.second ? "+" : "-") + kv.first().str();
  } else if (cpu == "generic") {
    cpu = "x86-64";
  }
  llvm::CodeGenOptLevel cg = o.optLevel <= 0 ? llvm::CodeGenOptLevel::None
                             : o.optLevel == 1 ? llvm::CodeGenOptLevel::Less
                             : o.optLevel == 2 ? llvm::CodeGenOptLevel::Default
                                               : llvm::CodeGenOptLevel::Aggressive;
  llvm::TargetOptions topts;
  std::unique_ptr<llvm::TargetMachine> tm(
      target->createTargetMachine(triple, cpu, features, topts, llvm::Reloc::PIC_, std::nullopt, cg));
  if (!tm) throw std::runtime_error("cannot create a target machine for CPU '" + o.cpu + "'");
  CompiledFn cf;
  cf.fn = &fn;
  cf.syms = fn.syms;
  llvm::LLVMContext ctx;
  llvm::Module mod("tdl", ctx);
  mod.setSourceFileName("tdl");
  mod.setDataLayout(tm->createDataLayout());
  mod.setTargetTriple(triple);
  Lowering low(cf, ctx, mod);
  low.run(fn, o.entry);
  std::string verr;
  llvm::raw_string_ostream vs(verr);
  if (llvm::verifyModule(mod, &vs)) throw std::runtime_error("internal: invalid LLVM IR: " + verr);
  llvm::OptimizationLevel level = o.optLevel <= 0 ? llvm::OptimizationLevel::O0
                                  : o.optLevel == 1 ? llvm::OptimizationLevel::O1
                                  : o.optLevel == 2 ? llvm::OptimizationLevel::O2
                                                    : llvm::OptimizationLevel::O3;
  optimizeModule(mod, tm.get(), level);
  AotResult r;
  llvm::raw_string_ostream ls(r.llvm);
  mod.print(ls, nullptr);
  r.object = emitFile(mod, *tm, llvm::CodeGenFileType::ObjectFile, "this target cannot emit object files");
  r.table = serializeTable(cf);
  return r;
}

}  // namespace tdl::codegen
