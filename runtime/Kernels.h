// The kernel tables: how the runtime reaches the kernels a model may leave out.
// (Their symbols start with tdlk_, not tdl_: libtdl_model.so exports tdl_*, and what it
// exports the linker keeps.)
//
// The elementwise kernels (one function per op, every dtype), the IR ops' evaluators
// (ir/Eval.cpp) and the host ops of compiled code (codegen/Exec.cpp) are called through
// tables indexed by op. A full runtime's tables (runtime/KernelTable.cpp,
// ir/EvalTable.cpp, codegen/HostTable.cpp) hold every entry. A minimal runtime made by
// `tdl runtime` for given models links a generated table instead that names only the
// kernels those models use; the linker (--gc-sections) then drops the others, as
// TF Lite's selective build does (docs/edge.md). A left-out entry is null: calling it is
// an error that says so, and a model that needs one is refused when it is loaded.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "DType.h"

extern "C" {
typedef void (*tdlk_fn)(void);
// By rt::BinaryOp / rt::UnaryOp (ops.def's order): tdlk_binary_<Enum>, tdlk_unary_<Enum>.
extern const tdlk_fn tdlk_binary_kernels[];
extern const tdlk_fn tdlk_unary_kernels[];
// Which table this program holds: "" for the full one, else a minimal runtime's models.
extern const char* const tdlk_kernels_for;
}

namespace tdl::rt {

using BinaryKernel = void (*)(int32_t dtype, const void* plan, const void* a, const void* b, void* out);
using UnaryKernel = void (*)(int32_t dtype, const void* x, void* out, int64_t n);

// The message for a kernel this runtime was built without (`what`: "op 'pow'").
std::string missing_kernel_message(std::string_view what);
// Whether this runtime holds every kernel (its tables are the full ones).
bool full_kernel_tables();

}  // namespace tdl::rt
