#include "Tensor.h"

#include <fmt/format.h>

#include <cstring>

#include "Convert.h"

namespace tdl::rt {

namespace {

// The exact decimal product of the dims and the itemsize (for messages about shapes
// whose byte count does not fit in 64 bits).
std::string decimal_byte_count(const Shape& shape, size_t item) {
  std::vector<int> digits{static_cast<int>(item)};  // little-endian base-10
  auto mul = [&](uint64_t m) {
    unsigned __int128 carry = 0;
    for (int& d : digits) {
      unsigned __int128 v = static_cast<unsigned __int128>(d) * m + carry;
      d = static_cast<int>(v % 10);
      carry = v / 10;
    }
    while (carry) {
      digits.push_back(static_cast<int>(carry % 10));
      carry /= 10;
    }
  };
  for (int64_t d : shape) mul(static_cast<uint64_t>(d));
  while (digits.size() > 1 && digits.back() == 0) digits.pop_back();
  std::string s;
  for (size_t i = digits.size(); i-- > 0;) s.push_back(static_cast<char>('0' + digits[i]));
  return s;
}

}  // namespace

Tensor::Tensor(const Tensor& o)
    : dtype_(o.dtype_), shape_(o.shape_), numel_(o.numel_), storage_(o.storage_) {
  storage_retain(storage_);
}

Tensor::Tensor(Tensor&& o) noexcept
    : dtype_(o.dtype_), shape_(std::move(o.shape_)), numel_(o.numel_), storage_(o.storage_) {
  o.storage_ = nullptr;
  o.numel_ = 0;
}

Tensor& Tensor::operator=(const Tensor& o) {
  if (this != &o) {
    storage_retain(o.storage_);
    storage_release(storage_);
    dtype_ = o.dtype_;
    shape_ = o.shape_;
    numel_ = o.numel_;
    storage_ = o.storage_;
  }
  return *this;
}

Tensor& Tensor::operator=(Tensor&& o) noexcept {
  if (this != &o) {
    storage_release(storage_);
    dtype_ = o.dtype_;
    shape_ = std::move(o.shape_);
    numel_ = o.numel_;
    storage_ = o.storage_;
    o.storage_ = nullptr;
    o.numel_ = 0;
  }
  return *this;
}

Tensor::~Tensor() { storage_release(storage_); }

Tensor Tensor::empty(DType dtype, const Shape& shape) { return empty(dtype, Shape(shape)); }

Tensor Tensor::empty(DType dtype, Shape&& shape) {
  validate_shape(shape);
  std::optional<int64_t> n = checked_numel(shape);
  size_t bytes = 0;
  if (!n || __builtin_mul_overflow(static_cast<size_t>(*n), itemsize(dtype), &bytes))
    throw Error(fmt::format("cannot allocate {} bytes for a tensor of shape {}",
                            decimal_byte_count(shape, itemsize(dtype)), shape_str(shape)));
  Tensor t;
  t.storage_ = storage_alloc(bytes, shape);
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.numel_ = *n;
  return t;
}

Tensor Tensor::zeros(DType dtype, const Shape& shape) {
  Tensor t = empty(dtype, shape);
  if (t.nbytes()) std::memset(t.storage_->data, 0, t.nbytes());
  return t;
}

namespace {
template <class T>
Tensor make_scalar(T v) {
  Tensor t = Tensor::empty(dtype_of<T>(), {});
  *t.mutable_data<T>() = v;
  return t;
}
}  // namespace

Tensor Tensor::scalar(bool v) { return make_scalar(v); }
Tensor Tensor::scalar(int32_t v) { return make_scalar(v); }
Tensor Tensor::scalar(int64_t v) { return make_scalar(v); }
Tensor Tensor::scalar(float v) { return make_scalar(v); }
Tensor Tensor::scalar(double v) { return make_scalar(v); }

Tensor Tensor::scalar_of(DType dtype, double v) {
  return dispatch(dtype, [&](auto tag) { return make_scalar(convert<decltype(tag)>(v)); });
}

Tensor Tensor::scalar_of_int(DType dtype, int64_t v) {
  return dispatch(dtype, [&](auto tag) { return make_scalar(convert<decltype(tag)>(v)); });
}

namespace {
// set_scalar / set_scalar_int: v converted as scalar_of[_int] would, into t's own buffer.
template <class V>
bool set_in_place(Tensor& t, DType dtype, V v) {
  if (!t.defined() || t.dtype() != dtype || t.rank() != 0 || !t.is_unique()) return false;
  dispatch(dtype, [&](auto tag) { *t.mutable_data<decltype(tag)>() = convert<decltype(tag)>(v); });
  return true;
}
}  // namespace

bool Tensor::set_scalar(DType dtype, double v) { return set_in_place(*this, dtype, v); }
bool Tensor::set_scalar_int(DType dtype, int64_t v) { return set_in_place(*this, dtype, v); }

std::string Tensor::type_str() const {
  return fmt::format("{}{}", dtype_name(dtype_), shape_str(shape_));
}

void* Tensor::mutable_raw() {
  if (!storage_) return nullptr;
  if (storage_->host_stale.load(std::memory_order_acquire)) storage_sync_host(storage_);
  if (!is_unique()) {
    Storage* copy = storage_alloc(storage_->nbytes, shape_);
    if (storage_->nbytes) std::memcpy(copy->data, storage_->data, storage_->nbytes);
    storage_release(storage_);
    storage_ = copy;
  }
  if (storage_->device) storage_drop_device(storage_);  // the host copy is written: the only current one
  return storage_->data;
}

Tensor Tensor::on_storage(Storage* s, DType dtype, const Shape& shape) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = shape;
  t.numel_ = numel_of(shape);
  t.storage_ = s;
  return t;
}

Tensor Tensor::with_shape(const Shape& shape) const {
  if (numel_of(shape) != numel_)
    throw InternalError("with_shape: element count changes from " + shape_str(shape_) + " to " + shape_str(shape));
  Tensor t = *this;
  t.shape_ = shape;
  return t;
}

double Tensor::item_double(int64_t flat) const {
  return dispatch(dtype_, [&](auto tag) {
    using T = decltype(tag);
    return static_cast<double>(data<T>()[flat]);
  });
}

int64_t Tensor::item_int64(int64_t flat) const {
  return dispatch(dtype_, [&](auto tag) {
    using T = decltype(tag);
    return convert<int64_t>(data<T>()[flat]);
  });
}

bool Tensor::item_bool(int64_t flat) const {
  return dispatch(dtype_, [&](auto tag) {
    using T = decltype(tag);
    return convert<bool>(data<T>()[flat]);
  });
}

void Tensor::check_one_element() const {
  if (numel_ != 1) throw Error("expected a scalar, got " + type_str());
}

double Tensor::scalar_as_double() const {
  check_one_element();
  return item_double(0);
}

int64_t Tensor::scalar_as_int64() const {
  check_one_element();
  return item_int64(0);
}

bool Tensor::scalar_as_bool() const {
  check_one_element();
  return item_bool(0);
}

}  // namespace tdl::rt
