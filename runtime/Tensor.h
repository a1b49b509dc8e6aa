// Tensor: a dtype, a shape and refcounted contiguous C-order storage.
//
// Copies share storage (copy-on-write): `mutable_data()` clones the buffer when it is
// shared, so an unshared tensor is updated in place and other copies never see the
// change. There are no strided views; reshape-like ops share the buffer, slicing copies.
// A default-constructed Tensor is "undefined" (no storage); every other has storage.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "DType.h"
#include "Error.h"
#include "Shape.h"
#include "Storage.h"

namespace tdl::rt {

class Tensor {
 public:
  Tensor() = default;
  Tensor(const Tensor& o);
  Tensor(Tensor&& o) noexcept;
  Tensor& operator=(const Tensor& o);
  Tensor& operator=(Tensor&& o) noexcept;
  ~Tensor();

  // Uninitialised contents. Validates the shape and the byte count; throws
  // `cannot allocate N bytes for a tensor of shape S`.
  static Tensor empty(DType dtype, const Shape& shape);
  static Tensor empty(DType dtype, Shape&& shape);  // takes the shape over (no copy)
  static Tensor zeros(DType dtype, const Shape& shape);

  // Rank-0 tensors.
  static Tensor scalar(bool v);
  static Tensor scalar(int32_t v);
  static Tensor scalar(int64_t v);
  static Tensor scalar(float v);
  static Tensor scalar(double v);
  // A scalar of `dtype` holding v converted as cast() would.
  static Tensor scalar_of(DType dtype, double v);
  static Tensor scalar_of_int(DType dtype, int64_t v);

  // Sets a rank-0 tensor of `dtype` to v converted as scalar_of / scalar_of_int would, in
  // place when it holds its buffer alone (no allocation: compiled code storing a loop's
  // counter into its slot each time round); false, and nothing changed, otherwise.
  bool set_scalar(DType dtype, double v);
  bool set_scalar_int(DType dtype, int64_t v);

  // From host values (size must equal the shape's element count).
  template <class T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);

  bool defined() const { return storage_ != nullptr; }
  DType dtype() const { return dtype_; }
  const Shape& shape() const { return shape_; }
  int64_t rank() const { return static_cast<int64_t>(shape_.size()); }
  int64_t dim(int64_t i) const { return shape_[i]; }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * itemsize(dtype_); }
  // "f32[2, 3]" — the type text used in messages.
  std::string type_str() const;

  // The host data; a tensor whose current copy is on a device is downloaded first.
  const void* raw() const {
    if (!storage_) return nullptr;
    if (storage_->host_stale.load(std::memory_order_acquire)) [[unlikely]]
      storage_sync_host(storage_);
    return storage_->data;
  }
  template <class T> const T* data() const { return static_cast<const T*>(raw()); }
  // Writable pointer; clones the storage first when it is shared.
  void* mutable_raw();
  template <class T> T* mutable_data() { return static_cast<T*>(mutable_raw()); }

  bool is_unique() const { return storage_ && storage_->refs.load(std::memory_order_acquire) == 1; }
  void ensure_unique() { mutable_raw(); }
  // Whether two tensors share one buffer (for tests).
  bool shares_storage_with(const Tensor& o) const { return storage_ && storage_ == o.storage_; }

  // Same storage, new shape with the same element count (internal; no -1 handling).
  Tensor with_shape(const Shape& shape) const;

  // Element `flat` (C order) converted to the host type.
  double item_double(int64_t flat) const;
  int64_t item_int64(int64_t flat) const;
  bool item_bool(int64_t flat) const;
  // The single element of a one-element tensor; else Error
  // `expected a scalar, got f32[3]`.
  double scalar_as_double() const;
  int64_t scalar_as_int64() const;
  bool scalar_as_bool() const;

  Storage* storage() const { return storage_; }
  // A tensor on storage `s` (taking over one reference), of dtype and shape whose bytes are
  // s->nbytes (the device layer's results).
  static Tensor on_storage(Storage* s, DType dtype, const Shape& shape);

 private:
  void check_one_element() const;

  DType dtype_ = DType::F32;
  Shape shape_;
  int64_t numel_ = 0;
  Storage* storage_ = nullptr;
};

template <class T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  Tensor t = empty(dtype_of<T>(), shape);
  if (static_cast<int64_t>(values.size()) != t.numel())
    throw Error("from_vector: value count does not match the shape " + shape_str(shape));
  T* p = t.mutable_data<T>();
  for (size_t i = 0; i < values.size(); ++i) p[i] = values[i];
  return t;
}

}  // namespace tdl::rt
