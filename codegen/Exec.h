// The run-time side of compiled graph fns: the op table and the call context that the
// `extern "C"` entry points of Exec.cpp work on.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "codegen/Codegen.h"
#include "runtime/Kernels.h"

namespace tdl::codegen {

// One op of the table: what `tdl_op(ctx, id)` runs.
struct OpEntry {
  const ir::Op* op = nullptr;
  std::vector<int32_t> in, out;            // slots
  std::vector<std::vector<int>> outSyms;   // per result, per dim: the sym index or -1
  int moveIn = -1;  // an operand (update: 0, gemm: its c, stack_push: the value) dead afterwards: the op takes it
};

struct ExecCtx {
  const CompiledFn* fn = nullptr;
  rt::Tensor* slots = nullptr;
  int64_t* syms = nullptr;
  std::string err;
  int32_t errOp = -1;
  std::vector<std::vector<rt::Tensor>> stacks;  // stack_new/push/pop (autodiff saves)
  int64_t reused = 0;                           // fused results that took a dead operand's buffer
  std::shared_ptr<void> pendingGroup;           // tdl_op_group_begin's products, run by tdl_op_group_end
  // Per product group (by its first op's id): Exec.cpp's ProductGroup, kept for its next run
  // in this call (a loop's group runs each time round without allocating its bookkeeping).
  std::vector<std::shared_ptr<void>> groups;
};

// The ops of a graph fn that run on the host as runtime calls (print, assert, random,
// collectives, gemm, the autodiff stacks and everything ir::evaluate knows), shared by
// compiled CPU code (tdl_op) and the device executor (codegen/DeviceExec.cpp). `in` may be
// moved from. Throws rt::Error.
struct HostOpEnv {
  explicit HostOpEnv(std::vector<std::vector<rt::Tensor>>& s) : stacks(s) {}
  std::vector<std::vector<rt::Tensor>>& stacks;  // stack_new/push/pop (autodiff saves)
  virtual ~HostOpEnv() = default;
  // A declared result type's shape with its symbols resolved.
  virtual rt::Shape resolve(const ir::TensorType& t) = 0;
  // A gemm updated its c in place (--trace-report counts these).
  virtual void reusedBuffer() {}
};
std::vector<rt::Tensor> runHostOp(const ir::Op& op, std::vector<rt::Tensor>& in, HostOpEnv& env);

// Functions that graph fns call as one opaque op (call_runtime "extern", attr `key`): a
// loaded model's fns, registered when the model loads (tools/ModelValue.cpp). The key names
// the model file's content and the fn, so code traced against one model never runs
// another's; a key not registered in this process is an error when the op runs.
using ExternFn = std::function<std::vector<rt::Tensor>(const std::vector<rt::Tensor>&)>;
void registerExternFn(const std::string& key, ExternFn fn);

// The host ops with kernels of their own, tdlk_host_<Enum>, found through the host
// table tdlk_host_kernel (runtime/Kernels.h; the full table is HostTable.cpp, a minimal
// runtime's names only what its models use). The other ops runHostOp runs are a few lines
// each, or ir::evaluate's.
#define TDL_HOST_OPS(X) X(Print) X(CallRuntime) X(Random) X(Update) X(Gemm)
bool hasHostKernel(ir::OpKind kind);
using HostKernel = void (*)(const ir::Op* op, std::vector<rt::Tensor>* in, std::vector<rt::Tensor>* out,
                            HostOpEnv* env);
// The message of an op's rt::Error as users see it (an index op on moved axes names the
// source's axes).
std::string hostOpMessage(const ir::Op& op, std::string msg);

// Fused loops below this many elements run on the calling thread; above, they are split
// over the runtime's pool (rt::parallel_for, chunks of at least half of it).
inline constexpr int64_t kFusedParallelThreshold = int64_t{1} << 16;
// Whether a fused loop of n elements, each worth `weight` simple operations (an add: 1; a
// transcendental many: Lower.cpp's loopWeight), is split over the pool, and its elements
// per chunk: from kFusedParallelThreshold elements, or fewer when they are costly.
inline bool fused_parallel(int64_t n, int64_t weight) {
  return n >= kFusedParallelThreshold || n * weight >= 2 * kFusedParallelThreshold;
}
inline int64_t fused_grain(int64_t weight) {
  return weight > 1 ? std::max<int64_t>(256, kFusedParallelThreshold / weight) : kFusedParallelThreshold / 2;
}

// Where generated code finds a slot's data and shape without a call (element loads and
// in-place stores of native scalars): byte offsets, measured at run time in Exec.cpp from
// live objects. `ok` is false when the layout is not the expected one (then the generated
// code always calls tdl_elem / tdl_update_elem).
struct NativeLayout {
  bool ok = false;
  int64_t ctxSlots = 0;       // ExecCtx::slots (rt::Tensor*)
  int64_t tensorSize = 0;     // sizeof(rt::Tensor)
  int64_t tensorDims = 0;     // the int64_t* of the tensor's shape (std::vector's begin)
  int64_t tensorStorage = 0;  // the tensor's rt::Storage*
  int64_t storageRefs = 0;    // Storage::refs (atomic int64)
  int64_t storageData = 0;    // Storage::data
};
const NativeLayout& nativeLayout();

// Addresses of the ABI functions, for the JIT's symbol table.
struct AbiSymbol {
  const char* name;
  void* addr;
};
std::vector<AbiSymbol> abiSymbols();

}  // namespace tdl::codegen

extern "C" {
// The kernel of host op kind `kind` (an ir::OpKind) that runHostOp calls, or null.
tdlk_fn tdlk_host_kernel(int32_t kind);
}
