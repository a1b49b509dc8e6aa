#include "Helpers.h"

using namespace tdl::rt;
using namespace tdl::rt::test;

TEST_CASE("dtype names, sizes and promotion", "[dtype]") {
  CHECK(dtype_name(DType::Bool) == "bool");
  CHECK(dtype_name(DType::F64) == "f64");
  CHECK(dtype_from_name("i32") == DType::I32);
  CHECK(!dtype_from_name("f16"));
  CHECK(itemsize(DType::Bool) == 1);
  CHECK(itemsize(DType::I64) == 8);
  // bool < i32 < i64 < f32 < f64
  CHECK(promote(DType::Bool, DType::I32) == DType::I32);
  CHECK(promote(DType::I32, DType::I64) == DType::I64);
  CHECK(promote(DType::I64, DType::F32) == DType::F32);
  CHECK(promote(DType::I32, DType::F32) == DType::F32);
  CHECK(promote(DType::F32, DType::F64) == DType::F64);
  CHECK(promote(DType::Bool, DType::Bool) == DType::Bool);
  CHECK(promote(DType::F64, DType::I64) == DType::F64);
}

TEST_CASE("broadcast shapes and their error", "[shape]") {
  CHECK(broadcast_shapes({3, 1}, {2}) == Shape{3, 2});
  CHECK(broadcast_shapes({2, 1, 3}, {4, 1}) == Shape{2, 4, 3});
  CHECK(broadcast_shapes({}, {5}) == Shape{5});
  CHECK(broadcast_shapes({0}, {1}) == Shape{0});
  CHECK(error_of([] { broadcast_shapes({2, 3}, {4}); }) == "cannot broadcast shapes [2, 3] and [4]");
  CHECK(error_of([] { add(ones({2, 3}), ones({4})); }) == "cannot broadcast shapes [2, 3] and [4]");
}

TEST_CASE("reshape shapes", "[shape]") {
  CHECK(reshape_shape({6}, {2, -1}) == Shape{2, 3});
  CHECK(reshape_shape({0, 3}, {-1, 3}) == Shape{0, 3});
  CHECK(error_of([] { reshape_shape({6}, {4, -1}); }) == "cannot reshape [6] into [4, -1]");
  CHECK(error_of([] { reshape_shape({6}, {-1, -1}); }) == "cannot reshape [6] into [-1, -1]");
  CHECK(error_of([] { reshape_shape({6}, {7}); }) == "cannot reshape [6] into [7]");
  CHECK(error_of([] { reshape_shape({0}, {0, -1}); }) == "cannot reshape [0] into [0, -1]");
}

TEST_CASE("axis and matmul shapes", "[shape]") {
  CHECK(normalize_axis(-1, 3) == 2);
  CHECK(error_of([] { normalize_axis(3, 2); }) == "axis 3 is out of range for a tensor of rank 2");
  CHECK(matmul_shape({2, 3}, {3, 4}) == Shape{2, 4});
  CHECK(matmul_shape({3}, {3, 4}) == Shape{4});
  CHECK(matmul_shape({2, 3}, {3}) == Shape{2});
  CHECK(matmul_shape({3}, {3}) == Shape{});
  CHECK(matmul_shape({5, 2, 3}, {3, 4}) == Shape{5, 2, 4});
  CHECK(matmul_shape({5, 1, 2, 3}, {4, 3, 4}) == Shape{5, 4, 2, 4});
  CHECK(error_of([] { matmul_shape({2, 3}, {4, 5}); }) == "cannot multiply shapes [2, 3] and [4, 5] (3 != 4)");
  CHECK(reduced_shape({2, 3, 4}, reduction_mask(std::vector<int64_t>{0, -1}, 3), false) == Shape{3});
  CHECK(reduced_shape({2, 3, 4}, reduction_mask(std::vector<int64_t>{1}, 3), true) == Shape{2, 1, 4});
  CHECK(!error_of([] { reduction_mask(std::vector<int64_t>{1, -2}, 3); }).empty());
}

TEST_CASE("allocation checks", "[tensor][alloc]") {
  const int64_t p32 = int64_t{1} << 32, p40 = int64_t{1} << 40;
  Tensor z = Tensor::empty(DType::F32, {0, p32, p32});
  CHECK(z.numel() == 0);
  CHECK(z.shape() == Shape{0, p32, p32});
  CHECK(error_of([&] { Tensor::empty(DType::F32, {p40, p40}); }) ==
        "cannot allocate 4835703278458516698824704 bytes for a tensor of shape [1099511627776, 1099511627776]");
  CHECK(error_of([] { Tensor::empty(DType::F32, {100000, 100000, 100000}); }) ==
        "cannot allocate 4000000000000000 bytes for a tensor of shape [100000, 100000, 100000]");
  CHECK(error_of([] { rand({100000, 100000, 100000}); }).rfind("cannot allocate", 0) == 0);
  CHECK(error_of([] { Tensor::empty(DType::F64, {int64_t{1} << 62}); }).rfind("cannot allocate 36893488147419103232 bytes", 0) == 0);
  CHECK(error_of([] { Tensor::empty(DType::F32, {-1}); }) == "invalid shape [-1]: dimensions must be >= 0");
  CHECK(!error_of([] { Tensor::empty(DType::F32, Shape(33, 1)); }).empty());
  CHECK_NOTHROW(Tensor::empty(DType::F32, Shape(32, 1)));
}

TEST_CASE("storage alignment and scalars", "[tensor]") {
  Tensor t = Tensor::empty(DType::F64, {3, 5});
  CHECK(reinterpret_cast<uintptr_t>(t.raw()) % 64 == 0);
  CHECK(Tensor::scalar(2.5f).scalar_as_double() == 2.5);
  CHECK(Tensor::scalar(int64_t{7}).scalar_as_int64() == 7);
  CHECK(Tensor::scalar(true).scalar_as_bool());
  CHECK(Tensor::scalar_of(DType::I32, -3.7).scalar_as_int64() == -3);
  CHECK(Tensor::scalar_of(DType::Bool, 0.5).scalar_as_bool());
  CHECK(Tensor::scalar_of(DType::F32, 0.1).dtype() == DType::F32);
  CHECK(error_of([] { ones({3}).scalar_as_double(); }) == "expected a scalar, got f32[3]");
  CHECK(ones({1, 1}).scalar_as_double() == 1.0);
  CHECK(ones({2, 3}).type_str() == "f32[2, 3]");
}

TEST_CASE("copy on write", "[tensor][cow]") {
  Tensor a = zeros({3});
  Tensor b = a;
  CHECK(a.shares_storage_with(b));
  CHECK(!a.is_unique());
  a.mutable_data<float>()[1] = 5.0f;
  CHECK(str(a) == "[0.0, 5.0, 0.0]");
  CHECK(str(b) == "[0.0, 0.0, 0.0]");
  CHECK(a.is_unique());
  const void* before = a.raw();
  a.mutable_data<float>()[0] = 1.0f;  // unshared: in place
  CHECK(a.raw() == before);
  // set_index on a copy
  Tensor m = ones({2, 2});
  Tensor m0 = m;
  set_index(m, {IndexItem::at(0)}, Tensor::scalar(7.0f));
  CHECK(str(m) == "[[7.0, 7.0],\n [1.0, 1.0]]");
  CHECK(str(m0) == "[[1.0, 1.0],\n [1.0, 1.0]]");
  // reshape shares storage but is still a value
  Tensor r = reshape(m, {4});
  CHECK(r.shares_storage_with(m));
  r.mutable_data<float>()[3] = 9.0f;
  CHECK(str(m) == "[[7.0, 7.0],\n [1.0, 1.0]]");
}
