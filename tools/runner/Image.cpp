#include "tools/runner/Image.h"

#include <fmt/format.h>

#include <cstdlib>

#include "codegen/Codegen.h"
#include "codegen/Device.h"
#include "codegen/DeviceExec.h"
#include "frontend/AstSerialize.h"
#include "ir/Printer.h"

namespace tdl::runner {

namespace {
class AotBackend : public vm::GraphBackend {
 public:
  std::unique_ptr<codegen::CompiledFn> compile(std::unique_ptr<ir::Module> module, ir::Function& fn,
                                               codegen::CompileTimes*) override {
    uint64_t h = vm::irHash(ir::to_string(fn));
    for (int32_t i = 0; i < tdl_aot_count; ++i) {
      const TdlAotEntry& e = tdl_aot_entries[i];
      if (e.irHash != h) continue;
      if (codegen::activeDevice() && e.ptx) {  // on the GPU
        codegen::KernelImage image;
        image.mod.ptx = e.ptx;
        if (!codegen::restoreKernels(image.mod.kernels, e.kernels ? e.kernels : "", fn)) return nullptr;
        if (e.cubin) image.cubin.assign(e.cubin, e.cubinSize);
        return codegen::makeDeviceFn(std::move(module), fn, &image);
      }
      auto cf = std::make_unique<codegen::CompiledFn>();
      if (!codegen::restoreTable(*cf, e.table, fn)) return nullptr;
      cf->entry = e.entry;
      cf->module = std::move(module);
      return cf;
    }
    return nullptr;
  }
};
}  // namespace

std::unique_ptr<vm::GraphBackend> makeAotBackend() { return std::make_unique<AotBackend>(); }

std::string selectDevice() {
  bool kernels = false;
  for (int32_t i = 0; i < tdl_aot_count; ++i) kernels = kernels || tdl_aot_entries[i].ptx;
  const char* env = std::getenv("TDL_DEVICE");
  std::string want = env && *env ? env : "auto";
  if (want == "cpu") return "";
  if (want != "auto" && want != "cuda") return fmt::format("TDL_DEVICE must be cpu, cuda or auto, not '{}'", want);
  if (!kernels) return want == "cuda" ? "TDL_DEVICE=cuda: this program was built without GPU kernels (tdl build --device cuda)" : "";
  std::string why = codegen::selectDevice("cuda");
  if (!why.empty() && want == "cuda") return "TDL_DEVICE=cuda: " + why;
  return "";
}

bool loadImage(SourceManager& sources, std::vector<std::unique_ptr<Module>>& modules, std::string& why) {
  std::string image(reinterpret_cast<const char*>(tdl_program_image), tdl_program_image_size);
  return deserializeProgram(image, sources, modules, why);
}

}  // namespace tdl::runner
