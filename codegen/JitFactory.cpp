#include "codegen/JitFactory.h"

#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/Support/TargetSelect.h>

namespace tdl::codegen {

llvm::Expected<HostJit> makeHostJit() {
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  auto jtmb = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!jtmb) return jtmb.takeError();
  jtmb->setCodeGenOptLevel(llvm::CodeGenOptLevel::Default);
  jtmb->setRelocationModel(llvm::Reloc::PIC_);
  HostJit h;
  auto tm = jtmb->createTargetMachine();
  if (!tm) return tm.takeError();
  h.tm = std::move(*tm);
  auto j = llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(std::move(*jtmb)).create();
  if (!j) return j.takeError();
  h.jit = std::move(*j);
  auto gen = llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(h.jit->getDataLayout().getGlobalPrefix());
  if (!gen) return gen.takeError();
  h.jit->getMainJITDylib().addGenerator(std::move(*gen));
  return h;
}

llvm::Expected<std::unique_ptr<llvm::TargetMachine>> makeHostTargetMachine(llvm::CodeGenOptLevel level) {
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  auto jtmb = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!jtmb) return jtmb.takeError();
  jtmb->setCodeGenOptLevel(level);
  jtmb->setRelocationModel(llvm::Reloc::PIC_);
  return jtmb->createTargetMachine();
}

}  // namespace tdl::codegen
