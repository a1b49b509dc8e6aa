#include <cmath>
#include <limits>

#include "Helpers.h"

using namespace tdl::rt;
using namespace tdl::rt::test;

TEST_CASE("broadcasting arithmetic", "[elementwise]") {
  Tensor a = f32({1, 2, 3}, {3, 1});
  Tensor b = f32({10, 20});
  CHECK(str(add(a, b)) == "[[11.0, 21.0],\n [12.0, 22.0],\n [13.0, 23.0]]");
  CHECK(mul(a, b).shape() == Shape{3, 2});
  CHECK(str(mul(arange_int(0, 4), Tensor::scalar(int64_t{2}))) == "[0, 2, 4, 6]");
  CHECK(str(sub(ones({2, 1, 3}), zeros({4, 1}))).find("[[[1.0, 1.0, 1.0],\n  [1.0, 1.0, 1.0],") == 0);
  CHECK(sub(ones({2, 1, 3}), zeros({4, 1})).shape() == Shape{2, 4, 3});
  // scalar with scalar, empty
  CHECK(str(add(Tensor::scalar(1.5f), Tensor::scalar(2.0f))) == "3.5");
  CHECK(add(zeros({0, 3}), ones({3})).shape() == Shape{0, 3});
}

TEST_CASE("dtype promotion in binary ops", "[elementwise]") {
  Tensor ai = i32({1, 2, 3});
  CHECK(add(ai, Tensor::scalar(int32_t{1})).dtype() == DType::I32);
  CHECK(str(mul(cast(ai, DType::F32), Tensor::scalar(0.5f))) == "[0.5, 1.0, 1.5]");
  CHECK(add(f64({1}), f32({1})).dtype() == DType::F64);
  CHECK(add(Tensor::scalar(int64_t{1}), Tensor::scalar(int32_t{1})).dtype() == DType::I64);
  CHECK(add(Tensor::scalar(int64_t{1}), Tensor::scalar(1.0f)).dtype() == DType::F32);
  CHECK(add(Tensor::scalar(true), Tensor::scalar(int64_t{1})).dtype() == DType::I64);
  CHECK(str(add(b8({true, true}), b8({true, false}))) == "[2, 1]");
  // true division
  CHECK(str(div(Tensor::scalar(int64_t{7}), Tensor::scalar(int64_t{2}))) == "3.5");
  CHECK(div(i64({1}), i64({3})).dtype() == DType::F32);
  CHECK(str(div(Tensor::scalar(int64_t{1}), Tensor::scalar(int64_t{3}))) == "0.33333334");
  CHECK(str(div(Tensor::scalar(1.0), Tensor::scalar(3.0))) == "0.3333333333333333");
  CHECK(str(div(Tensor::scalar(1.0f), Tensor::scalar(0.0f))) == "inf");
  CHECK(binary_result_dtype(BinaryOp::Lt, DType::F32, DType::I32) == DType::Bool);
  CHECK(unary_result_dtype(UnaryOp::Exp, DType::I64) == DType::F32);
}

TEST_CASE("floor division and modulo follow Python", "[elementwise]") {
  auto s = [](int64_t v) { return Tensor::scalar(v); };
  CHECK(str(floordiv(s(7), s(2))) == "3");
  CHECK(str(mod(s(7), s(3))) == "1");
  CHECK(str(floordiv(s(-7), s(2))) == "-4");
  CHECK(str(mod(s(-7), s(3))) == "2");
  CHECK(str(mod(s(7), s(-3))) == "-2");
  CHECK(str(floordiv(s(7), s(-2))) == "-4");
  CHECK(str(floordiv(i32({-7, 7, -8}), i32({2, -2, 2}))) == "[-4, -4, -4]");
  CHECK(str(mod(i32({-7, 7, -8}), i32({2, -2, 3}))) == "[1, -1, 1]");
  CHECK(str(floordiv(Tensor::scalar(7.5f), Tensor::scalar(2.0f))) == "3.0");
  CHECK(str(mod(Tensor::scalar(-7.5f), Tensor::scalar(2.0f))) == "0.5");
  CHECK(str(mod(Tensor::scalar(7.5), Tensor::scalar(-2.0))) == "-0.5");
  CHECK(str(floordiv(Tensor::scalar(-7.5), Tensor::scalar(2.0))) == "-4.0");
  CHECK(str(floordiv(Tensor::scalar(1.0f), Tensor::scalar(0.0f))) == "inf");
  CHECK(std::isnan(mod(Tensor::scalar(1.0f), Tensor::scalar(0.0f)).scalar_as_double()));
  CHECK(error_of([&] { floordiv(s(1), s(0)); }) == "division by zero");
  CHECK(error_of([&] { mod(i32({1, 2}), i32({1, 0})); }) == "division by zero");
  CHECK(error_of([&] { floordiv(b8({true}), b8({false})); }) == "division by zero");
  // INT_MIN // -1 wraps instead of trapping
  const int64_t mn = std::numeric_limits<int64_t>::min();
  CHECK(floordiv(s(mn), s(-1)).scalar_as_int64() == mn);
  CHECK(mod(s(mn), s(-1)).scalar_as_int64() == 0);
}

TEST_CASE("integer arithmetic wraps", "[elementwise]") {
  const int32_t mx = std::numeric_limits<int32_t>::max();
  CHECK(str(add(i32({mx}), i32({1}))) == "[-2147483648]");
  CHECK(str(mul(i32({65536}), i32({65536}))) == "[0]");
  CHECK(str(neg(i32({std::numeric_limits<int32_t>::min()}))) == "[-2147483648]");
  const int64_t mx64 = std::numeric_limits<int64_t>::max();
  CHECK(add(Tensor::scalar(mx64), Tensor::scalar(int64_t{1})).scalar_as_int64() == std::numeric_limits<int64_t>::min());
  CHECK(str(pow(Tensor::scalar(int64_t{2}), Tensor::scalar(int64_t{10}))) == "1024");
  CHECK(str(pow(Tensor::scalar(int64_t{2}), Tensor::scalar(int64_t{64}))) == "0");
  CHECK(str(pow(Tensor::scalar(int64_t{-3}), Tensor::scalar(int64_t{3}))) == "-27");
  CHECK(!error_of([] { pow(Tensor::scalar(int64_t{2}), Tensor::scalar(int64_t{-1})); }).empty());
  CHECK(str(pow(Tensor::scalar(2.0f), Tensor::scalar(-1.0f))) == "0.5");
  CHECK(str(pow(Tensor::scalar(2.0f), Tensor::scalar(0.5f))) == "1.4142135");
  CHECK(str(abs(i32({std::numeric_limits<int32_t>::min(), -5}))) == "[-2147483648, 5]");
}

TEST_CASE("comparisons and logical ops", "[elementwise]") {
  CHECK(str(gt(f32({1, 2, 3}), Tensor::scalar(1.5f))) == "[false, true, true]");
  CHECK(str(eq(i64({1, 2}), i64({1, 3}))) == "[true, false]");
  CHECK(str(bitwise_or(eq(i64({1, 2}), i64({1, 3})), b8({false, true}))) == "[true, true]");
  CHECK(str(bitwise_not(b8({true, false}))) == "[false, true]");
  CHECK(str(bitwise_and(Tensor::scalar(int64_t{6}), Tensor::scalar(int64_t{3}))) == "2");
  CHECK(str(bitwise_or(Tensor::scalar(int64_t{6}), Tensor::scalar(int64_t{3}))) == "7");
  CHECK(str(bitwise_xor(Tensor::scalar(int64_t{6}), Tensor::scalar(int64_t{3}))) == "5");
  CHECK(str(bitwise_not(Tensor::scalar(int64_t{0}))) == "-1");
  CHECK(str(logical_and(b8({true, true, false}), b8({true, false, false}))) == "[true, false, false]");
  CHECK(str(logical_or(f32({0, 2}), f32({0, 0}))) == "[false, true]");
  CHECK(str(logical_not(f32({0, 2}))) == "[true, false]");
  CHECK(!error_of([] { bitwise_and(f32({1}), f32({1})); }).empty());
  CHECK(!error_of([] { bitwise_not(f32({1})); }).empty());
  CHECK(str(le(f64({1, 2}), f64({2, 2}))) == "[true, true]");
  CHECK(str(ne(f32({NAN}), f32({NAN}))) == "[true]");
  CHECK(str(ge(i32({1, 2}), i64({2, 1}))) == "[false, true]");
  CHECK(str(lt(i32({1, 2}), i64({2, 1}))) == "[true, false]");
}

TEST_CASE("unary math", "[elementwise]") {
  CHECK(str(exp(Tensor::scalar(0.0f))) == "1.0");
  CHECK(str(log(Tensor::scalar(1.0f))) == "0.0");
  CHECK(str(sqrt(Tensor::scalar(4.0f))) == "2.0");
  CHECK(str(abs(f32({-1.5, 2}))) == "[1.5, 2.0]");
  CHECK(str(abs(Tensor::scalar(int64_t{-3}))) == "3");
  CHECK(str(relu(f32({-1, 0, 2}))) == "[0.0, 0.0, 2.0]");
  CHECK(str(relu(i64({-1, 3}))) == "[0, 3]");
  CHECK(str(sigmoid(Tensor::scalar(0.0f))) == "0.5");
  CHECK(str(tanh(Tensor::scalar(0.0f))) == "0.0");
  CHECK(str(floor(Tensor::scalar(-1.5f))) == "-2.0");
  CHECK(str(ceil(Tensor::scalar(-1.5f))) == "-1.0");
  CHECK(str(round(f32({2.5, 3.5, -2.5, 0.5, 1.4999}))) == "[2.0, 4.0, -2.0, 0.0, 1.0]");
  CHECK(str(round(i64({3}))) == "[3]");
  CHECK(str(sign(f32({-3, 0, 2}))) == "[-1.0, 0.0, 1.0]");
  CHECK(str(sign(i32({-3, 0, 2}))) == "[-1, 0, 1]");
  CHECK(str(square(Tensor::scalar(int64_t{3}))) == "9");
  CHECK(str(square(f64({1.5}))) == "[2.25]");
  CHECK(str(rsqrt(Tensor::scalar(4.0f))) == "0.5");
  CHECK(str(log1p(Tensor::scalar(0.0f))) == "0.0");
  CHECK(str(sin(Tensor::scalar(0.0f))) == "0.0");
  CHECK(str(cos(Tensor::scalar(0.0f))) == "1.0");
  CHECK(str(isnan(log(Tensor::scalar(-1.0f)))) == "true");
  CHECK(str(isfinite(div(Tensor::scalar(1.0f), Tensor::scalar(0.0f)))) == "false");
  CHECK(str(isnan(i32({1}))) == "[false]");
  CHECK(str(isfinite(i32({1}))) == "[true]");
  CHECK(str(neg(b8({true}))) == "[-1]");
  CHECK(exp(i64({0})).dtype() == DType::F32);
  CHECK(exp(f64({0})).dtype() == DType::F64);
  CHECK(str(exp(f64({1}))) == "[2.718281828459045]");
  CHECK(str(maximum(i64({1, 5}), i64({3, 2}))) == "[3, 5]");
  CHECK(str(minimum(Tensor::scalar(1.0f), Tensor::scalar(2.0f))) == "1.0");
  CHECK(std::isnan(maximum(f32({NAN}), f32({1})).scalar_as_double()));
  CHECK(std::isnan(minimum(f32({1}), f32({NAN})).scalar_as_double()));
  CHECK(str(clip(f32({-2, 0.5, 3}), Tensor::scalar(0.0f), Tensor::scalar(1.0f))) == "[0.0, 0.5, 1.0]");
}

TEST_CASE("cast", "[elementwise]") {
  CHECK(str(cast(Tensor::scalar(3.7f), DType::I32)) == "3");
  CHECK(str(cast(Tensor::scalar(-3.7f), DType::I64)) == "-3");
  CHECK(str(cast(Tensor::scalar(0.0f), DType::Bool)) == "false");
  CHECK(str(cast(Tensor::scalar(2.5f), DType::Bool)) == "true");
  CHECK(str(cast(Tensor::scalar(0.1f), DType::F64)) == "0.10000000149011612");
  CHECK(str(cast(Tensor::scalar(0.1), DType::F32)) == "0.1");
  CHECK(str(cast(i64({1, 0, -2}), DType::Bool)) == "[true, false, true]");
  CHECK(str(cast(b8({true, false}), DType::F32)) == "[1.0, 0.0]");
  CHECK(cast(f32({NAN}), DType::I32).scalar_as_int64() == std::numeric_limits<int32_t>::min());
  CHECK(cast(f32({1e30f}), DType::I64).scalar_as_int64() == std::numeric_limits<int64_t>::min());
  Tensor x = f32({1});
  CHECK(cast(x, DType::F32).shares_storage_with(x));
}

TEST_CASE("where", "[elementwise]") {
  CHECK(str(where(b8({true, false, true}), i64({1, 2, 3}), Tensor::scalar(int64_t{0}))) == "[1, 0, 3]");
  Tensor w = where(b8({true, false}, {2, 1}), f32({1, 2, 3}), f64({0}));
  CHECK(w.dtype() == DType::F64);
  CHECK(str(w) == "[[1.0, 2.0, 3.0],\n [0.0, 0.0, 0.0]]");
  CHECK(str(where(f32({0, 1}), i32({1, 1}), i32({2, 2}))) == "[2, 1]");
}

TEST_CASE("large elementwise ops run in parallel and agree", "[elementwise][parallel]") {
  const int64_t n = 1 << 20;
  Tensor a = arange(0, static_cast<double>(n), 1.0, DType::F32);
  Tensor b = add(a, Tensor::scalar(1.0f));
  Tensor c = sub(b, a);
  CHECK(all(eq(c, Tensor::scalar(1.0f))).scalar_as_bool());
  Tensor m = reshape(a, {1024, 1024});
  Tensor row = arange(0, 1024, 1, DType::F32);
  Tensor s = sub(m, row);  // broadcast along rows
  CHECK(s.item_double(1024 * 5 + 7) == 1024.0 * 5);
  Tensor e = exp(mul(a, Tensor::scalar(0.0f)));
  CHECK(sum(e).scalar_as_double() == static_cast<double>(n));
}
