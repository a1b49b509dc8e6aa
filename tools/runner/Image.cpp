#include "tools/runner/Image.h"

#include "codegen/Codegen.h"
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

bool loadImage(SourceManager& sources, std::vector<std::unique_ptr<Module>>& modules, std::string& why) {
  std::string image(reinterpret_cast<const char*>(tdl_program_image), tdl_program_image_size);
  return deserializeProgram(image, sources, modules, why);
}

}  // namespace tdl::runner
