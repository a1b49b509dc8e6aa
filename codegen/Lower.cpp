// Lowering of optimized IR to LLVM IR, the O2 pipeline, and the JIT (a thin wrapper over
// ORC LLJIT, DESIGN habit 12). The only file of the project that includes LLVM headers.
//
// Structure of the generated code: one LLVM function per traced signature,
// `i32 NAME(ptr ctx)`. Every IR value has a slot; a `while` shares one set of slots
// between its inits, both regions' arguments and its results, so a loop iteration
// overwrites the same slots (bounded memory). Yields move a value when it has no other
// use, and an `update` whose tensor is dead afterwards takes its buffer (in place).
#include <chrono>
#include <map>
#include <mutex>

#include <fmt/format.h>

#include "codegen/Codegen.h"
#include "codegen/Exec.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>
#pragma GCC diagnostic pop

namespace tdl::codegen {

namespace {

// ------------------------------------------------------------------ analysis

// Whether value x is defined inside op w's regions.
bool definedInside(const ir::Value* x, const ir::Op* w) {
  const ir::Block* b = x->block();
  for (const ir::Op* p = b && b->parent() ? b->parent()->parent_op() : nullptr; p; p = p->parent_op())
    if (p == w) return true;
  return false;
}

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
    if (p->kind() == ir::OpKind::While && !definedInside(x, p)) return false;
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

struct Lowering {
  CompiledFn& cf;
  llvm::LLVMContext& ctx;
  llvm::Module& mod;
  llvm::IRBuilder<> b;
  llvm::Function* fn = nullptr;
  llvm::Value* ctxArg = nullptr;
  llvm::BasicBlock* failBB = nullptr;
  llvm::FunctionCallee opFn, truthFn, moveFn, copyFn;
  std::map<const ir::Value*, int> slot;

  Lowering(CompiledFn& c, llvm::LLVMContext& x, llvm::Module& m) : cf(c), ctx(x), mod(m), b(x) {}

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
    truthFn = mod.getOrInsertFunction("tdl_truth", llvm::FunctionType::get(i32t, {ptr, i32t}, false));
    moveFn = mod.getOrInsertFunction("tdl_move", llvm::FunctionType::get(voidt, {ptr, i32t, i32t}, false));
    copyFn = mod.getOrInsertFunction("tdl_copy", llvm::FunctionType::get(voidt, {ptr, i32t, i32t}, false));
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
        for (const ir::Value* v : op.operands()) cf.resultSlots.push_back(slotOf(v));
        b.CreateRet(i32(0));
        return;
      default: break;
    }
    OpEntry e;
    e.op = &op;
    for (const ir::Value* v : op.operands()) e.in.push_back(slotOf(v));
    for (size_t i = 0; i < op.num_results(); ++i) {
      e.out.push_back(slotOf(op.result(i)));
      std::vector<int> syms;
      for (const ir::Dim& d : op.result(i)->type.dims) {
        int k = -1;
        if (d.is_symbolic())
          for (size_t s = 0; s < cf.syms.size(); ++s)
            if (cf.syms[s] == d.sym) k = static_cast<int>(s);
        syms.push_back(k);
      }
      e.outSyms.push_back(std::move(syms));
    }
    if (op.kind() == ir::OpKind::Update) e.moveFirst = deadAfter(op, op.operand(0));
    int id = static_cast<int>(cf.ops.size());
    cf.ops.push_back(std::move(e));
    llvm::Value* st = b.CreateCall(opFn, {ctxArg, i32(id)});
    llvm::BasicBlock* next = llvm::BasicBlock::Create(ctx, "", fn);
    b.CreateCondBr(b.CreateICmpNE(st, i32(0)), failBB, next);
    b.SetInsertPoint(next);
  }

  void lowerBlock(const ir::Block& blk) {
    for (size_t i = 0; i < blk.size(); ++i) lowerOp(blk.op(i));
  }

  void lowerCond(const ir::Op& op) {
    std::vector<int> rs;
    for (size_t i = 0; i < op.num_results(); ++i) rs.push_back(slotOf(op.result(i)));
    llvm::Value* p = b.CreateCall(truthFn, {ctxArg, i32(slotOf(op.operand(0)))});
    auto* thenBB = llvm::BasicBlock::Create(ctx, "then", fn);
    auto* elseBB = llvm::BasicBlock::Create(ctx, "else", fn);
    auto* mergeBB = llvm::BasicBlock::Create(ctx, "endif", fn);
    b.CreateCondBr(b.CreateICmpNE(p, i32(0)), thenBB, elseBB);
    for (int r = 0; r < 2; ++r) {
      b.SetInsertPoint(r == 0 ? thenBB : elseBB);
      const ir::Block& blk = op.region(static_cast<size_t>(r)).block();
      lowerBlock(blk);
      if (const ir::Op* y = blk.terminator())
        for (size_t i = 0; i < y->num_operands() && i < rs.size(); ++i)
          transfer(rs[i], slotOf(y->operand(i)), movable(*y, y->operand(i)));
      b.CreateBr(mergeBB);
    }
    b.SetInsertPoint(mergeBB);
  }

  void lowerWhile(const ir::Op& op) {
    size_t n = op.num_results();
    std::vector<int> cs;
    for (size_t i = 0; i < n; ++i) {
      int s = newSlot();
      cs.push_back(s);
      slot[op.result(i)] = s;
      slot[op.region(0).block().arg(i)] = s;
      slot[op.region(1).block().arg(i)] = s;
    }
    for (size_t i = 0; i < n; ++i) transfer(cs[i], slotOf(op.operand(i)), false);
    auto* headBB = llvm::BasicBlock::Create(ctx, "while", fn);
    auto* bodyBB = llvm::BasicBlock::Create(ctx, "body", fn);
    auto* exitBB = llvm::BasicBlock::Create(ctx, "endwhile", fn);
    b.CreateBr(headBB);
    b.SetInsertPoint(headBB);
    const ir::Block& cb = op.region(0).block();
    lowerBlock(cb);
    llvm::Value* p = b.CreateCall(truthFn, {ctxArg, i32(slotOf(cb.terminator()->operand(0)))});
    b.CreateCondBr(b.CreateICmpNE(p, i32(0)), bodyBB, exitBB);
    b.SetInsertPoint(bodyBB);
    const ir::Block& bb = op.region(1).block();
    lowerBlock(bb);
    const ir::Op* y = bb.terminator();
    // Parallel copy through temporaries (a yield may permute the carried values).
    std::vector<std::pair<int, int>> moves;
    for (size_t i = 0; i < n; ++i) {
      int src = slotOf(y->operand(i));
      if (src == cs[i]) continue;
      int t = newSlot();
      transfer(t, src, movable(*y, y->operand(i)));
      moves.emplace_back(cs[i], t);
    }
    for (auto& [dst, t] : moves) transfer(dst, t, true);
    b.CreateBr(headBB);
    b.SetInsertPoint(exitBB);
  }

  void run(const ir::Function& f, const std::string& name) {
    declareAbi();
    auto* ptr = llvm::PointerType::getUnqual(ctx);
    auto* ft = llvm::FunctionType::get(b.getInt32Ty(), {ptr}, false);
    fn = llvm::Function::Create(ft, llvm::Function::ExternalLinkage, name, mod);
    ctxArg = fn->getArg(0);
    auto* entry = llvm::BasicBlock::Create(ctx, "entry", fn);
    failBB = llvm::BasicBlock::Create(ctx, "fail", fn);
    b.SetInsertPoint(failBB);
    b.CreateRet(i32(1));
    b.SetInsertPoint(entry);
    for (const ir::Value* p : f.params()) cf.paramSlots.push_back(slotOf(p));
    lowerBlock(f.entry());
    if (!b.GetInsertBlock()->getTerminator()) b.CreateRet(i32(0));
  }
};

void optimize(llvm::Module& m, llvm::TargetMachine* tm) {
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PassBuilder pb(tm);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  llvm::ModulePassManager mpm = pb.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O2);
  mpm.run(m, mam);
}

// ------------------------------------------------------------------ the JIT

class Jit {
 public:
  static Jit& get() {
    static Jit j;
    return j;
  }
  llvm::orc::LLJIT& jit() { return *jit_; }
  llvm::TargetMachine* tm() { return tm_.get(); }
  std::string error;

 private:
  Jit() {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    auto jtmb = llvm::orc::JITTargetMachineBuilder::detectHost();
    if (!jtmb) {
      error = llvm::toString(jtmb.takeError());
      return;
    }
    jtmb->setCodeGenOptLevel(llvm::CodeGenOptLevel::Default);
    auto tm = jtmb->createTargetMachine();
    if (tm) tm_ = std::move(*tm);
    else error = llvm::toString(tm.takeError());
    auto j = llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(std::move(*jtmb)).create();
    if (!j) {
      error = llvm::toString(j.takeError());
      return;
    }
    jit_ = std::move(*j);
    llvm::orc::SymbolMap syms;
    for (const AbiSymbol& s : abiSymbols())
      syms[jit_->mangleAndIntern(s.name)] = {llvm::orc::ExecutorAddr::fromPtr(s.addr), llvm::JITSymbolFlags::Exported};
    if (auto err = jit_->getMainJITDylib().define(llvm::orc::absoluteSymbols(std::move(syms))))
      error = llvm::toString(std::move(err));
  }
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

std::unique_ptr<CompiledFn> compile(std::unique_ptr<ir::Module> module, ir::Function& fn, CompileTimes* times) {
  std::lock_guard<std::mutex> lock(jitMutex);
  auto t0 = std::chrono::steady_clock::now();
  Jit& jit = Jit::get();
  if (!jit.error.empty()) throw std::runtime_error("cannot start the JIT: " + jit.error);
  auto cf = std::make_unique<CompiledFn>();
  cf->fn = &fn;
  cf->syms = fn.syms;
  auto ctx = std::make_unique<llvm::LLVMContext>();
  auto mod = std::make_unique<llvm::Module>("tdl", *ctx);
  mod->setDataLayout(jit.jit().getDataLayout());
  std::string name = symbolName(fn);
  Lowering low(*cf, *ctx, *mod);
  low.run(fn, name);
  std::string verr;
  llvm::raw_string_ostream vs(verr);
  if (llvm::verifyModule(*mod, &vs)) throw std::runtime_error("internal: invalid LLVM IR: " + verr);
  if (times) times->lowerMs += msSince(t0);
  auto t1 = std::chrono::steady_clock::now();
  optimize(*mod, jit.tm());
  if (auto err = jit.jit().addIRModule(llvm::orc::ThreadSafeModule(std::move(mod), std::move(ctx))))
    throw std::runtime_error("JIT: " + llvm::toString(std::move(err)));
  auto sym = jit.jit().lookup(name);
  if (!sym) throw std::runtime_error("JIT: " + llvm::toString(sym.takeError()));
  cf->entry = sym->toPtr<int (*)(void*)>();
  cf->module = std::move(module);
  if (times) times->llvmMs += msSince(t1);
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
  optimize(mod, jit.tm());
  std::string out;
  llvm::raw_string_ostream os(out);
  if (stage == "asm") {
    llvm::SmallVector<char, 0> buf;
    llvm::raw_svector_ostream as(buf);
    llvm::legacy::PassManager pm;
    if (!jit.tm() || jit.tm()->addPassesToEmitFile(pm, as, nullptr, llvm::CodeGenFileType::AssemblyFile))
      throw std::runtime_error("this target cannot emit assembly");
    pm.run(mod);
    return std::string(buf.begin(), buf.end());
  }
  mod.print(os, nullptr);
  return out;
}

}  // namespace tdl::codegen
