// What `tdl build` links beside the runner (tools/runner/Main.cpp or Lib.cpp): the program
// image (frontend/AstSerialize) and the table of graph fn versions compiled ahead of time,
// defined by the C file that tools/Build.cpp generates; and the pieces both runners share.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "frontend/Ast.h"
#include "graph/GraphCache.h"

extern "C" {

struct TdlAotEntry {
  uint64_t irHash;            // vm::irHash of the optimized IR's text
  int (*entry)(void* ctx);    // the compiled function (codegen ABI)
  const char* table;          // codegen::serializeTable
  // `tdl build --device cuda` (else null/0): the PTX of its kernels, their list
  // (codegen::serializeKernels), and a cubin for the build's arch when ptxas was there.
  const char* ptx;
  const char* kernels;
  const char* cubin;
  uint64_t cubinSize;
};

extern const unsigned char tdl_program_image[];
extern const uint64_t tdl_program_image_size;
extern const TdlAotEntry tdl_aot_entries[];
extern const int32_t tdl_aot_count;
}

namespace tdl::runner {

// The trace cache's backend in a native program: the code compiled ahead of time for the
// optimized IR, or none (the version runs in the VM).
std::unique_ptr<vm::GraphBackend> makeAotBackend();

// A program built with --device cuda runs its graph fns on a GPU: TDL_DEVICE=auto (the
// default) takes GPU 0 when there is one and the CPU otherwise, cpu never, cuda always
// (else "" is not returned: why not). Returns "" when it may go on.
std::string selectDevice();

// Reads the embedded program image into `sources` and `modules`; false with `why`.
bool loadImage(SourceManager& sources, std::vector<std::unique_ptr<Module>>& modules, std::string& why);

}  // namespace tdl::runner
