// The full runtime's elementwise kernel table: every op (runtime/Kernels.h). A minimal
// runtime (`tdl runtime`) links a generated table in this one's place.
#include "Elementwise.h"
#include "Kernels.h"

extern "C" {
#define TDL_BINARY_OP(e, n, ...) void tdlk_binary_##e(int32_t, const void*, const void*, const void*, void*);
#define TDL_UNARY_OP(e, n, ...) void tdlk_unary_##e(int32_t, const void*, void*, int64_t);
#include "ops.def"

const tdlk_fn tdlk_binary_kernels[] = {
#define TDL_BINARY_OP(e, n, ...) reinterpret_cast<tdlk_fn>(&tdlk_binary_##e),
#include "ops.def"
};
const tdlk_fn tdlk_unary_kernels[] = {
#define TDL_UNARY_OP(e, n, ...) reinterpret_cast<tdlk_fn>(&tdlk_unary_##e),
#include "ops.def"
};
const char* const tdlk_kernels_for = "";
}
