// codegen/Ptx: the data-parallel parts of a graph fn as PTX for an NVIDIA GPU, through
// LLVM's NVPTX backend (`tdl emit --stage ptx`, `--gpu-arch`, default sm_90).
//
// What becomes a kernel (one per op, in program order, also inside while/cond regions):
//   - a `fused` op, or a single elementwise op on tensors (cast, select, the binary and
//     unary ops a fused body may hold): a grid-stride loop over the result's elements;
//     tensor operands by pointer (Full: element i; Row: column i % inner; Col: row
//     i / inner; any other NumPy broadcast: by strides), scalar operands by value; then
//     `i64 n`, `i64 inner` with Row/Col operands, and with strided operands the result's
//     dims and each such operand's strides (planLaunch fills them in);
//   - a `fused_reduce` (sum/mean of a fused body over all axes or the last): the block
//     reduction below, computing the body per element; params (out, x0, the other
//     operands, i64 rows, i64 cols[, i64 inner = x0's last dim with rows/columns]);
//   - a `reduce` (sum mean max min prod all any) over trailing axes (all axes, the last
//     axis, ...): params (out, in, i64 rows, i64 cols); one block of exactly
//     kReduceBlock threads per row (grid-stride over rows), warp shuffles
//     (llvm.nvvm.shfl.sync.bfly) and one shared-memory step across the warps;
//   - a `reduce` over a run of adjacent axes that are not the trailing ones (sum(x, axis=0)):
//     x viewed as [outer, red, inner], params (out, in, i64 outer, i64 red, i64 inner),
//     a grid-stride loop over the outer * inner outputs, each thread walking red.
//   - `argmax`/`argmin` along one axis: the same [outer, red, inner] view and parameters,
//     one thread per output (the first best index; a NaN wins first, as in the runtime).
//     The host launches a reduction only when the reduced size is > 0 (an empty max/min
//     is an error that it reports itself).
// Everything else (control flow, matmul, indexing, shape ops, print, random, ...) stays
// on the host; the PTX text starts with comments that list the kernels and those ops.
// f64 exp/log/sin/... need libdevice, which is not linked: those ops stay on the host.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "codegen/Kernels.h"
#include "ir/IR.h"

namespace tdl::codegen {

// Compiles the (optimized) IR of `fn` for `gpuArch` ("sm_90"). Throws
// std::invalid_argument for an arch LLVM's NVPTX target does not know, and
// std::runtime_error when LLVM fails.
PtxModule compilePtx(const ir::Function& fn, const std::string& gpuArch);
// compilePtx(...).ptx
std::string emitPtx(ir::Function& fn, const std::string& gpuArch);

// The same kernels built for the host CPU and run on an emulated grid (blocks one after
// another; a block's threads one after another, or as fibers switched at the warp
// shuffles and barriers of block reductions): the emulated device (`--device emu`) and
// the tests check what the kernels compute without a GPU.
class HostKernelEmulator {
 public:
  explicit HostKernelEmulator(const ir::Function& fn);
  ~HostKernelEmulator();
  const std::vector<PtxKernel>& kernels() const;
  // Runs kernel `name`; buffers in l.args are host addresses.
  void launch(const std::string& name, const KernelLaunch& l);
  void launch(size_t kernel, const KernelLaunch& l);
  // cuLaunchKernel's form: params[i] points to argument i's bytes.
  void launch(const std::string& name, unsigned grid, unsigned block, void** params);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// For tests: the kernels' own f32 math ("exp", "log", "log1p", "tanh", "sigmoid", "sin",
// "cos") built from the same LLVM IR, JIT-compiled for the host CPU, evaluated at xs.
std::vector<float> evalKernelMathF32(const std::string& op, const std::vector<float>& xs);

// Whether LLVM 19's NVPTX target knows `arch` (sm_20 ... sm_90a).
bool isKnownGpuArch(const std::string& arch);
// The known archs, space-separated (for error messages).
std::string knownGpuArchs();

}  // namespace tdl::codegen
