// struct tdl_tensor (tdl_model.h) ↔ rt::Tensor, for both C interfaces: the models' C API
// (CApi.cpp) and the libraries `tdl build --lib` writes (tools/runner/Lib.cpp). One set of
// checks on what a caller passes, one way results are handed out and freed.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#include "runtime/Error.h"
#include "runtime/Tensor.h"
#include "tools/capi/tdl_model.h"

namespace tdl::ctensor {

// A copy of the caller's tensor (its memory stays the caller's). `what` names it in errors
// ("input 2"): a bad dtype or rank, a negative size, no data. Bool bytes become 0 or 1.
inline rt::Tensor fromC(const tdl_tensor& t, const std::string& what) {
  if (t.dtype < 0 || t.dtype > 4 || t.rank < 0 || t.rank > rt::kMaxRank || (t.rank > 0 && !t.shape))
    throw rt::Error(fmt::format("{} has a bad dtype or rank", what));
  rt::Shape shape(t.shape, t.shape + t.rank);
  for (int64_t d : shape)
    if (d < 0) throw rt::Error(fmt::format("{} has a negative size", what));
  auto dt = static_cast<rt::DType>(t.dtype);
  rt::Tensor x = rt::Tensor::empty(dt, shape);
  if (x.nbytes() > 0) {
    if (!t.data) throw rt::Error(fmt::format("{} has no data", what));
    std::memcpy(x.mutable_raw(), t.data, x.nbytes());
    if (dt == rt::DType::Bool) {  // any nonzero byte is true, stored as 1
      auto* b = static_cast<unsigned char*>(x.mutable_raw());
      for (size_t k = 0; k < x.nbytes(); ++k) b[k] = b[k] != 0;
    }
  }
  return x;
}

// Releases what toC allocated (a zeroed or freed struct is fine).
inline void freeC(tdl_tensor* t) {
  if (!t) return;
  std::free(t->data);
  std::free(t->shape);
  t->data = nullptr;
  t->shape = nullptr;
  t->rank = 0;
}

// Results for the caller: every tensor in `out` copied into malloc'd memory, written to
// `dst` only when all allocations succeeded (else nothing is left allocated and rt::Error).
inline void toC(const std::vector<rt::Tensor>& out, tdl_tensor* dst) {
  std::vector<tdl_tensor> made(out.size(), tdl_tensor{nullptr, 0, 0, nullptr});
  for (size_t i = 0; i < out.size(); ++i) {
    const rt::Tensor& t = out[i];
    tdl_tensor& o = made[i];
    o.dtype = static_cast<int32_t>(t.dtype());
    o.rank = static_cast<int32_t>(t.rank());
    o.shape = static_cast<int64_t*>(std::malloc(sizeof(int64_t) * static_cast<size_t>(std::max<int64_t>(1, t.rank()))));
    o.data = std::malloc(std::max<size_t>(1, t.nbytes()));
    if (!o.shape || !o.data) {
      for (auto& m : made) freeC(&m);
      throw rt::Error(fmt::format("cannot allocate {} bytes for output {}", t.nbytes(), i));
    }
    for (int64_t d = 0; d < t.rank(); ++d) o.shape[d] = t.dim(d);
    if (t.nbytes()) std::memcpy(o.data, t.raw(), t.nbytes());
  }
  std::copy(made.begin(), made.end(), dst);
}

}  // namespace tdl::ctensor
