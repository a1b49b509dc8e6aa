// Tensor types of the IR: a dtype and a list of dims, each a known size or a symbolic
// dim. Symbolic dims are named per function (`N`, `B` from annotations; `?0`, `?1` for
// anonymous ones); two symbolic dims are the same size iff they have the same name.
// Text: `f32[B, 4]`, `i64[]` (a scalar), `bool[?0]`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runtime/DType.h"
#include "runtime/Shape.h"

namespace tdl::ir {

using rt::DType;

struct Dim {
  int64_t size = 0;  // when known (sym empty)
  std::string sym;   // the symbol's name when symbolic

  static Dim known(int64_t n) { return Dim{n, {}}; }
  static Dim symbolic(std::string name) { return Dim{0, std::move(name)}; }
  bool is_known() const { return sym.empty(); }
  bool is_symbolic() const { return !sym.empty(); }
  bool operator==(const Dim& o) const { return size == o.size && sym == o.sym; }
  std::string str() const;
};

struct TensorType {
  DType dtype = DType::F32;
  std::vector<Dim> dims;

  TensorType() = default;
  TensorType(DType d, std::vector<Dim> ds) : dtype(d), dims(std::move(ds)) {}
  // A type with every dim known.
  static TensorType of(DType d, const rt::Shape& shape);
  static TensorType scalar(DType d) { return TensorType(d, {}); }

  int64_t rank() const { return static_cast<int64_t>(dims.size()); }
  bool is_scalar() const { return dims.empty(); }
  bool is_static() const;
  // The shape when every dim is known.
  std::optional<rt::Shape> static_shape() const;
  bool operator==(const TensorType& o) const { return dtype == o.dtype && dims == o.dims; }
  TensorType with_dtype(DType d) const { return TensorType(d, dims); }
  // "f32[B, 4]".
  std::string str() const;
};

// "[B, 4]".
std::string dims_str(const std::vector<Dim>& dims);

}  // namespace tdl::ir
