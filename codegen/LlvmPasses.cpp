#include "codegen/LlvmPasses.h"

#include <llvm/ADT/SmallVector.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Instructions.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/MC/MCSubtargetInfo.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Transforms/IPO/AlwaysInliner.h>
#include <llvm/Transforms/IPO/GlobalDCE.h>
#include <llvm/Transforms/InstCombine/InstCombine.h>
#include <llvm/Transforms/Scalar/SimplifyCFG.h>
#include <llvm/Transforms/Utils/ModuleUtils.h>

#include <algorithm>
#include <stdexcept>

#include "codegen/ScalarEmit.h"

namespace tdl::codegen {

namespace {

constexpr const char* kExpName = "tdl_expf";

llvm::Function* expFunction(llvm::Module& m, llvm::Type* t, const char* name, bool scalef) {
  auto* fn = llvm::Function::Create(llvm::FunctionType::get(t, {t}, false), llvm::Function::InternalLinkage, name, m);
  fn->setDoesNotAccessMemory();
  fn->setDoesNotThrow();
  fn->addFnAttr(llvm::Attribute::WillReturn);
  fn->addFnAttr(llvm::Attribute::NoInline);  // until the vectorizer has seen its calls
  llvm::IRBuilder<> b(llvm::BasicBlock::Create(m.getContext(), "entry", fn));
  b.CreateRet(emitExpF32(b, fn->getArg(0), scalef));
  return fn;
}

void runPipeline(llvm::Module& m, llvm::TargetMachine* tm, llvm::OptimizationLevel level, bool inlineOnly) {
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
  llvm::ModulePassManager mpm;
  if (inlineOnly) {
    mpm.addPass(llvm::AlwaysInlinerPass());
    llvm::FunctionPassManager fpm;
    fpm.addPass(llvm::InstCombinePass());
    fpm.addPass(llvm::SimplifyCFGPass());
    mpm.addPass(llvm::createModuleToFunctionPassAdaptor(std::move(fpm)));
    mpm.addPass(llvm::GlobalDCEPass());
  } else {
    mpm = level == llvm::OptimizationLevel::O0 ? pb.buildO0DefaultPipeline(level) : pb.buildPerModuleDefaultPipeline(level);
  }
  mpm.run(m, mam);
}

}  // namespace

llvm::Value* callExpF32(llvm::IRBuilder<>& b, llvm::Module& m, llvm::Value* x) {
  llvm::Function* fn = m.getFunction(kExpName);
  if (!fn) {
    llvm::IRBuilderBase::InsertPointGuard guard(b);
    fn = expFunction(m, b.getFloatTy(), kExpName, false);
  }
  return b.CreateCall(fn, {x});
}

void optimizeModule(llvm::Module& m, llvm::TargetMachine* tm, llvm::OptimizationLevel level) {
  // f32 exp in CPU loops is a call of tdl_expf (callExpF32). With AVX-512 the loop vectorizer
  // is told of 16- and 8-lane variants that scale by vscalefps (LLVM 19 does not vectorize
  // llvm.ldexp), and every form is inlined after the pipeline; elsewhere tdl_expf is inlined
  // at once. The bits are the same either way.
  std::vector<llvm::Function*> expFns;
  if (llvm::Function* expf = m.getFunction(kExpName)) {
    const llvm::Triple triple(m.getTargetTriple());
    bool variants = tm && level != llvm::OptimizationLevel::O0 && triple.getArch() == llvm::Triple::x86_64 &&
                    tm->getMCSubtargetInfo()->checkFeatures("+avx512f,+avx512vl");
    expFns.push_back(expf);
    if (variants) {
      llvm::LLVMContext& ctx = m.getContext();
      expFns.push_back(expFunction(m, llvm::FixedVectorType::get(llvm::Type::getFloatTy(ctx), 16), "tdl_expf_v16", true));
      expFns.push_back(expFunction(m, llvm::FixedVectorType::get(llvm::Type::getFloatTy(ctx), 8), "tdl_expf_v8", true));
      // Kept until the vectorizer runs (nothing calls them before).
      llvm::appendToCompilerUsed(m, {expFns[1], expFns[2]});
      for (llvm::User* u : expf->users())
        if (auto* call = llvm::dyn_cast<llvm::CallInst>(u))
          call->addFnAttr(llvm::Attribute::get(ctx, "vector-function-abi-variant",
                                               "_ZGVeN16v_tdl_expf(tdl_expf_v16),_ZGVeN8v_tdl_expf(tdl_expf_v8)"));
    } else {
      expf->removeFnAttr(llvm::Attribute::NoInline);
      expf->addFnAttr(llvm::Attribute::AlwaysInline);
      expFns.clear();
    }
  }
  std::vector<std::string> names;
  for (llvm::Function* fn : expFns) names.push_back(fn->getName().str());
  runPipeline(m, tm, level, false);
  if (expFns.empty()) return;
  expFns.clear();  // the pipeline deletes tdl_expf when every call of it was vectorized
  for (const std::string& name : names)
    if (llvm::Function* fn = m.getFunction(name)) expFns.push_back(fn);
  llvm::removeFromUsedLists(m, [&](llvm::Constant* c) {
    return std::find(expFns.begin(), expFns.end(), c) != expFns.end();
  });
  for (llvm::Function* fn : expFns) {
    fn->removeFnAttr(llvm::Attribute::NoInline);
    fn->addFnAttr(llvm::Attribute::AlwaysInline);
  }
  runPipeline(m, tm, level, true);
}

std::string emitFile(llvm::Module& m, llvm::TargetMachine& tm, llvm::CodeGenFileType type, const char* cannot) {
  llvm::SmallVector<char, 0> buf;
  llvm::raw_svector_ostream os(buf);
  llvm::legacy::PassManager pm;
  if (tm.addPassesToEmitFile(pm, os, nullptr, type)) throw std::runtime_error(cannot);
  pm.run(m);
  return std::string(buf.begin(), buf.end());
}

}  // namespace tdl::codegen
