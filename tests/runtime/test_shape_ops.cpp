#include "Helpers.h"

using namespace tdl::rt;
using namespace tdl::rt::test;

TEST_CASE("reshape expand squeeze flatten", "[shapeops]") {
  Tensor x = arange_int(0, 6);
  CHECK(reshape(x, {2, -1}).shape() == Shape{2, 3});
  CHECK(error_of([&] { reshape(x, {4, -1}); }) == "cannot reshape [6] into [4, -1]");
  CHECK(expand_dims(x, 0).shape() == Shape{1, 6});
  CHECK(expand_dims(x, -1).shape() == Shape{6, 1});
  CHECK(!error_of([&] { expand_dims(x, 2); }).empty());
  CHECK(squeeze(ones({1, 3, 1})).shape() == Shape{3});
  CHECK(squeeze(ones({1, 3, 1}), std::vector<int64_t>{0}).shape() == Shape{3, 1});
  CHECK(!error_of([] { squeeze(ones({1, 3}), std::vector<int64_t>{1}); }).empty());
  CHECK(str(flatten(ones({2, 2}))) == "[1.0, 1.0, 1.0, 1.0]");
}

TEST_CASE("concat and stack", "[shapeops]") {
  CHECK(str(concat({i64({1, 2}), i64({3})})) == "[1, 2, 3]");
  CHECK(str(stack({i64({1, 2}), i64({1, 2})}, 1)) == "[[1, 1],\n [2, 2]]");
  CHECK(str(stack({i64({1, 2}), i64({3, 4})})) == "[[1, 2],\n [3, 4]]");
  CHECK(str(concat({ones({1, 2}), zeros({1, 2})}, 1)) == "[[1.0, 1.0, 0.0, 0.0]]");
  CHECK(concat({i32({1}), f64({2})}).dtype() == DType::F64);
  CHECK(!error_of([] { concat({ones({2, 3}), ones({2, 4})}); }).empty());
  CHECK(!error_of([] { concat({}); }).empty());
  CHECK(!error_of([] { stack({ones({2}), ones({3})}); }).empty());
  CHECK(concat({zeros({0, 2}), ones({3, 2})}).shape() == Shape{3, 2});
  CHECK(stack({Tensor::scalar(1.0f), Tensor::scalar(2.0f)}).shape() == Shape{2});
}

TEST_CASE("broadcast_to transpose", "[shapeops]") {
  CHECK(str(broadcast_to(f32({1, 2}), {2, 2})) == "[[1.0, 2.0],\n [1.0, 2.0]]");
  CHECK(error_of([] { broadcast_to(f32({1, 2, 3}), {2, 2}); }) == "cannot broadcast shape [3] to [2, 2]");
  Tensor a = f32({1, 2, 3, 4}, {2, 2});
  CHECK(str(transpose(a)) == "[[1.0, 3.0],\n [2.0, 4.0]]");
  CHECK(transpose(zeros({2, 3, 4}), {2, 0, 1}).shape() == Shape{4, 2, 3});
  Tensor x = reshape(arange_int(0, 24), {2, 3, 4});
  Tensor t = transpose(x, {2, 0, 1});
  CHECK(t.item_int64(0 * 6 + 1 * 3 + 2) == x.item_int64(1 * 12 + 2 * 4 + 0));
  CHECK(str(transpose(x, {1, 0, 2})) ==
        "[[[0, 1, 2, 3],\n  [12, 13, 14, 15]],\n [[4, 5, 6, 7],\n  [16, 17, 18, 19]],\n [[8, 9, 10, 11],\n  [20, 21, 22, 23]]]");
  CHECK(!error_of([&] { transpose(x, {0, 0, 1}); }).empty());
  CHECK(!error_of([&] { transpose(x, {0, 1}); }).empty());
  Tensor big = reshape(arange(0, 512 * 384, 1, DType::F64), {512, 384});
  Tensor bt = transpose(big);
  CHECK(bt.item_double(100 * 512 + 7) == big.item_double(7 * 384 + 100));
}

TEST_CASE("take one_hot tile pad", "[shapeops]") {
  CHECK(str(take(i64({10, 20, 30}), i64({2, 2, 0}))) == "[30, 30, 10]");
  CHECK(str(take(i64({10, 20, 30}), i64({-1}))) == "[30]");
  CHECK(error_of([] { take(i64({10, 20, 30}), i64({3})); }) == "index 3 is out of range for axis 0 of size 3");
  Tensor m = reshape(arange_int(0, 6), {2, 3});
  CHECK(str(take(m, i32({2, 0}), 1)) == "[[2, 0],\n [5, 3]]");
  CHECK(take(m, i64({0, 1, 1, 0}, {2, 2}), 0).shape() == Shape{2, 2, 3});
  CHECK(!error_of([&] { take(m, f32({0})); }).empty());
  CHECK(str(one_hot(i64({0, 2}), 3)) == "[[1.0, 0.0, 0.0],\n [0.0, 0.0, 1.0]]");
  CHECK(str(one_hot(i64({5, -1}), 2, DType::I32)) == "[[0, 0],\n [0, 0]]");
  CHECK(str(tile(i64({1, 2}), {2})) == "[1, 2, 1, 2]");
  CHECK(str(tile(i64({1, 2}), {2, 2})) == "[[1, 2, 1, 2],\n [1, 2, 1, 2]]");
  CHECK(str(tile(i64({1, 2, 3, 4}, {2, 2}), {2})) == "[[1, 2, 1, 2],\n [3, 4, 3, 4]]");
  CHECK(str(pad(i64({1, 2}), {{1, 2}}, Tensor::scalar(int64_t{0}))) == "[0, 1, 2, 0, 0]");
  CHECK(str(pad(f32({1, 2, 3, 4}, {2, 2}), {{1, 0}, {0, 1}}, Tensor::scalar(9.0))) ==
        "[[9.0, 9.0, 9.0],\n [1.0, 2.0, 9.0],\n [3.0, 4.0, 9.0]]");
  CHECK(!error_of([] { pad(i64({1}), {{-1, 0}}, Tensor::scalar(int64_t{0})); }).empty());
}

TEST_CASE("creation", "[create]") {
  CHECK(str(zeros({0})) == "[]");
  CHECK(ones({2, 0}).shape() == Shape{2, 0});
  CHECK(str(full({2}, 7, DType::I64)) == "[7, 7]");
  CHECK(str(full({2}, Tensor::scalar(int64_t{7}))) == "[7, 7]");
  CHECK(str(eye(2)) == "[[1.0, 0.0],\n [0.0, 1.0]]");
  CHECK(str(eye(2, 3, DType::I32)) == "[[1, 0, 0],\n [0, 1, 0]]");
  CHECK(str(arange_int(0, 5)) == "[0, 1, 2, 3, 4]");
  CHECK(str(arange_int(5, 0, -2)) == "[5, 3, 1]");
  CHECK(str(arange_int(0, 0)) == "[]");
  CHECK(str(arange(1, 2, 0.25)) == "[1.0, 1.25, 1.5, 1.75]");
  CHECK(!error_of([] { arange_int(0, 5, 0); }).empty());
  CHECK(str(linspace(0.0, 1.0, 5)) == "[0.0, 0.25, 0.5, 0.75, 1.0]");
  CHECK(str(linspace(2.0, 3.0, 1)) == "[2.0]");
  CHECK(str(zeros_like(f32({1, 2}, {1, 2}))) == "[[0.0, 0.0]]");
  CHECK(str(ones_like(i64({1, 2}))) == "[1, 1]");
}

TEST_CASE("index_add is the adjoint of take", "[shapeops]") {
  // Repeated indices add up; negative indices count from the end.
  Tensor base = zeros({3});
  CHECK(str(index_add(base, i64({0, 2, 0, -1}), f32({1, 2, 3, 4}))) == "[4.0, 0.0, 6.0]");
  CHECK(str(base) == "[0.0, 0.0, 0.0]");  // base itself is unchanged
  // Along axis 1 of a matrix: src has take's result shape.
  Tensor m = zeros({2, 3});
  Tensor src = reshape(f32({1, 2, 3, 4}), {2, 2});
  CHECK(str(index_add(m, i64({2, 2}), src, 1)) == "[[0.0, 0.0, 3.0],\n [0.0, 0.0, 7.0]]");
  CHECK(error_of([] { index_add(zeros({2}), i64({2}), f32({1})); }) == "index 2 is out of range for axis 0 of size 2");
}
