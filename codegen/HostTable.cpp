// The full runtime's host op table: every host kernel of Exec.cpp (runtime/Kernels.h). A
// minimal runtime (`tdl runtime`) links a generated table in this one's place.
#include "codegen/Exec.h"

using tdl::codegen::HostOpEnv;
using tdl::ir::Op;
using V = std::vector<tdl::rt::Tensor>;

extern "C" {
#define TDL_HOST_DECL(e) void tdlk_host_##e(const Op*, V*, V*, HostOpEnv*);
TDL_HOST_OPS(TDL_HOST_DECL)
#undef TDL_HOST_DECL

tdlk_fn tdlk_host_kernel(int32_t kind) {
  switch (static_cast<tdl::ir::OpKind>(kind)) {
#define TDL_HOST_CASE(e) \
  case tdl::ir::OpKind::e: return reinterpret_cast<tdlk_fn>(&tdlk_host_##e);
    TDL_HOST_OPS(TDL_HOST_CASE)
#undef TDL_HOST_CASE
    default: return nullptr;
  }
}
}
