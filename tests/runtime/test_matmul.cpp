#include "Helpers.h"

using namespace tdl::rt;
using namespace tdl::rt::test;

TEST_CASE("matmul from the conformance suite", "[matmul]") {
  Tensor a = f32({1, 2, 3, 4}, {2, 2});
  Tensor b = f32({5, 6, 7, 8}, {2, 2});
  CHECK(str(matmul(a, b)) == "[[19.0, 22.0],\n [43.0, 50.0]]");
  CHECK(str(matmul(a, f32({1, 1}))) == "[3.0, 7.0]");
  CHECK(str(matmul(f32({1, 1}), a)) == "[4.0, 6.0]");
  CHECK(str(dot(f32({1, 2, 3}), f32({4, 5, 6}))) == "32.0");
  CHECK(str(outer(f32({1, 2}), f32({3, 4}))) == "[[3.0, 4.0],\n [6.0, 8.0]]");
  Tensor batch = matmul(ones({5, 2, 3}), ones({3, 4}));
  CHECK(batch.shape() == Shape{5, 2, 4});
  CHECK(batch.item_double(4 * 8 + 1 * 4 + 3) == 3.0);
  Tensor big = matmul(ones({300, 200}), ones({200, 100}));
  CHECK(big.shape() == Shape{300, 100});
  CHECK(str(sum(big)) == "6000000.0");
  CHECK(str(matmul(i32({1, 2}, {1, 2}), i32({3, 4}, {2, 1}))) == "[[11]]");
  CHECK(matmul(i32({1, 2}, {1, 2}), i32({3, 4}, {2, 1})).dtype() == DType::I32);
}

TEST_CASE("matmul batches, dtypes and errors", "[matmul]") {
  Tensor a = reshape(arange(0, 12, 1, DType::F64), {2, 2, 3});
  Tensor b = reshape(arange(0, 6, 1, DType::F64), {1, 3, 2});
  Tensor c = matmul(a, b);
  CHECK(c.shape() == Shape{2, 2, 2});
  CHECK(str(c) == "[[[10.0, 13.0],\n  [28.0, 40.0]],\n [[46.0, 67.0],\n  [64.0, 94.0]]]");
  // integer path equals the float path
  Tensor ci = matmul(cast(a, DType::I64), cast(b, DType::I64));
  CHECK(all(eq(ci, c)).scalar_as_bool());
  // batch broadcast both ways
  CHECK(matmul(ones({4, 1, 2, 3}), ones({5, 3, 6})).shape() == Shape{4, 5, 2, 6});
  CHECK(matmul(f32({1, 2, 3}), ones({2, 3, 4})).shape() == Shape{2, 4});
  CHECK(matmul(ones({2, 4, 3}), f32({1, 2, 3})).shape() == Shape{2, 4});
  CHECK(matmul(ones({3, 0}), ones({0, 2})).shape() == Shape{3, 2});
  CHECK(str(matmul(ones({2, 0}), ones({0, 2}))) == "[[0.0, 0.0],\n [0.0, 0.0]]");
  CHECK(matmul(f32({1}), f64({2})).dtype() == DType::F64);
  CHECK(str(matmul(b8({true, false}), b8({false, true}))) == "false");
  CHECK(error_of([] { matmul(ones({2, 3}), ones({4, 5})); }) == "cannot multiply shapes [2, 3] and [4, 5] (3 != 4)");
  CHECK(!error_of([] { matmul(Tensor::scalar(1.0f), ones({2})); }).empty());
  CHECK(!error_of([] { matmul(ones({2, 2, 3}), ones({3, 3, 4})); }).empty());
}

TEST_CASE("dot", "[matmul]") {
  CHECK(str(dot(Tensor::scalar(2.0f), f32({1, 2}))) == "[2.0, 4.0]");
  Tensor a = reshape(arange(0, 6, 1, DType::F32), {2, 3});
  Tensor b = reshape(arange(0, 24, 1, DType::F32), {2, 3, 4});
  Tensor d = dot(a, b);
  CHECK(d.shape() == Shape{2, 2, 4});
  // d[i, j, k] = sum_p a[i, p] * b[j, p, k]
  double ref = 0;
  for (int p = 0; p < 3; ++p) ref += a.item_double(1 * 3 + p) * b.item_double(1 * 12 + p * 4 + 2);
  CHECK(d.item_double(1 * 8 + 1 * 4 + 2) == ref);
}
