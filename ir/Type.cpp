#include "ir/Type.h"

#include <fmt/format.h>

namespace tdl::ir {

std::string Dim::str() const { return is_known() ? std::to_string(size) : sym; }

TensorType TensorType::of(DType d, const rt::Shape& shape) {
  std::vector<Dim> dims;
  dims.reserve(shape.size());
  for (int64_t n : shape) dims.push_back(Dim::known(n));
  return TensorType(d, std::move(dims));
}

bool TensorType::is_static() const {
  for (const Dim& d : dims)
    if (d.is_symbolic()) return false;
  return true;
}

std::optional<rt::Shape> TensorType::static_shape() const {
  if (!is_static()) return std::nullopt;
  rt::Shape s;
  s.reserve(dims.size());
  for (const Dim& d : dims) s.push_back(d.size);
  return s;
}

std::string dims_str(const std::vector<Dim>& dims) {
  std::string out = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) out += ", ";
    out += dims[i].str();
  }
  return out + "]";
}

std::string TensorType::str() const { return std::string(rt::dtype_name(dtype)) + dims_str(dims); }

}  // namespace tdl::ir
