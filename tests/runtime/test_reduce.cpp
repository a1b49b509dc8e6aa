#include <cmath>

#include "Helpers.h"

using namespace tdl::rt;
using namespace tdl::rt::test;

using Ax = std::vector<int64_t>;

TEST_CASE("reductions from the conformance suite", "[reduce]") {
  Tensor x = f32({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(str(sum(x)) == "21.0");
  CHECK(str(sum(x, Ax{0})) == "[5.0, 7.0, 9.0]");
  CHECK(str(mean(x, Ax{1})) == "[2.0, 5.0]");
  CHECK(str(max(x, Ax{1}, true)) == "[[3.0],\n [6.0]]");
  CHECK(str(min(x, Ax{0, 1})) == "1.0");
  CHECK(str(argmax(x, Ax{1})) == "[2, 2]");
  CHECK(str(argmin(x)) == "0");
  CHECK(str(prod(i64({1, 2, 3, 4}))) == "24");
  CHECK(str(all(b8({true, true}))) == "true");
  CHECK(str(any(b8({false, false}))) == "false");
  CHECK(str(logsumexp(f32({0, 0}))) == "0.6931472");
  CHECK(str(sum(x, Ax{-1})) == "[6.0, 15.0]");
  CHECK(str(sum(arange_int(0, 101))) == "5050");
  CHECK(str(mean(arange_int(0, 4))) == "1.5");
  CHECK(str(sum(ones({1000000}))) == "1000000.0");
}

TEST_CASE("reduction dtypes", "[reduce]") {
  CHECK(sum(b8({true, true, false})).dtype() == DType::I64);
  CHECK(str(sum(b8({true, true, false}))) == "2");
  CHECK(sum(i32({1, 2})).dtype() == DType::I64);
  CHECK(sum(f64({1, 2})).dtype() == DType::F64);
  CHECK(mean(i32({1, 2})).dtype() == DType::F32);
  CHECK(mean(f64({1, 2})).dtype() == DType::F64);
  CHECK(max(i32({1, 2})).dtype() == DType::I32);
  CHECK(argmax(f32({1, 2})).dtype() == DType::I64);
  CHECK(all(f32({1, 2})).dtype() == DType::Bool);
  CHECK(str(all(f32({1, 0}))) == "false");
  CHECK(logsumexp(i32({0, 0})).dtype() == DType::F32);
}

TEST_CASE("reductions over axes and keepdims", "[reduce]") {
  Tensor x = reshape(arange(0, 24, 1, DType::F32), {2, 3, 4});
  CHECK(str(sum(x, Ax{0, 2})) == "[60.0, 92.0, 124.0]");  // non-adjacent axes
  CHECK(sum(x, Ax{0, 2}, true).shape() == Shape{1, 3, 1});
  CHECK(str(sum(x, Ax{1})) == "[[12.0, 15.0, 18.0, 21.0],\n [48.0, 51.0, 54.0, 57.0]]");
  CHECK(str(max(x, Ax{2})) == "[[3.0, 7.0, 11.0],\n [15.0, 19.0, 23.0]]");
  CHECK(str(argmax(x, Ax{0})) == "[[1, 1, 1, 1],\n [1, 1, 1, 1],\n [1, 1, 1, 1]]");
  CHECK(sum(x, std::nullopt, true).shape() == Shape{1, 1, 1});
  CHECK(sum(x, Ax{}).shape() == Shape{2, 3, 4});  // empty axis list reduces nothing
  CHECK(str(prod(f32({2, 3, 4}, {3, 1}), Ax{1})) == "[2.0, 3.0, 4.0]");
  CHECK(!error_of([&] { sum(x, Ax{3}); }).empty());
  CHECK(!error_of([&] { sum(x, Ax{1, 1}); }).empty());
  CHECK(str(sum(Tensor::scalar(3.0f))) == "3.0");
}

TEST_CASE("argmax picks the first maximum; NaN propagates", "[reduce]") {
  CHECK(str(argmax(f32({1, 3, 3, 2}))) == "1");
  CHECK(str(argmin(i64({4, 1, 1}))) == "1");
  CHECK(str(argmax(f32({1, NAN, 5}))) == "1");
  CHECK(std::isnan(max(f32({1, NAN, 5})).scalar_as_double()));
  CHECK(std::isnan(min(f32({NAN, 1})).scalar_as_double()));
  CHECK(str(argmax(f32({1, 5, 2, 7}, {2, 2}), Ax{1})) == "[1, 1]");
}

TEST_CASE("empty reductions", "[reduce]") {
  CHECK(str(sum(zeros({0}))) == "0.0");
  CHECK(str(prod(zeros({0}))) == "1.0");
  CHECK(str(all(b8({}))) == "true");
  CHECK(str(any(b8({}))) == "false");
  CHECK(std::isnan(mean(zeros({0})).scalar_as_double()));
  CHECK(!error_of([] { max(zeros({0})); }).empty());
  CHECK(!error_of([] { argmax(zeros({2, 0}), Ax{1}); }).empty());
  CHECK(max(zeros({0, 3}), Ax{1}).shape() == Shape{0});
  CHECK(sum(zeros({2, 0}), Ax{1}).shape() == Shape{2});
  CHECK(str(sum(zeros({2, 0}), Ax{1})) == "[0.0, 0.0]");
  CHECK(str(logsumexp(zeros({0}))) == "-inf");
}

TEST_CASE("logsumexp is stable", "[reduce]") {
  CHECK(str(logsumexp(f32({1000, 1000}))) == "1000.6932");
  CHECK(str(logsumexp(f32({-INFINITY, -INFINITY}))) == "-inf");
  CHECK(str(logsumexp(f64({0, 0, 1, 1}, {2, 2}), Ax{1})) == "[0.6931471805599453, 1.6931471805599454]");
}

TEST_CASE("big reductions are accurate and parallel", "[reduce][parallel]") {
  CHECK(str(sum(ones({3000, 1000}))) == "3000000.0");
  CHECK(str(sum(ones({3000, 1000}), Ax{0})).rfind("[3000.0, 3000.0", 0) == 0);
  Tensor s0 = sum(ones({200000, 3}), Ax{0});
  CHECK(str(s0) == "[200000.0, 200000.0, 200000.0]");
  Tensor x = full({1 << 21}, 0.1, DType::F32);
  double got = sum(x).scalar_as_double();
  CHECK(std::abs(got - 0.1f * (1 << 21)) / (0.1f * (1 << 21)) < 1e-6);
  CHECK(str(sum(arange_int(0, 1 << 20))) == "549755289600");
  CHECK(str(max(arange(0, 1 << 20, 1, DType::F32))) == "1048575.0");
  CHECK(str(argmax(arange(0, 1 << 20, 1, DType::F32))) == "1048575");
}
