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

// The vectorized row and column kernels against a plain scalar reference: rows of every length
// up to a few vectors (the tails), values drawn from a small set so that ties are common, with
// +-0, +-inf and NaN mixed in; the first extreme (or first NaN) wins, as in NumPy.
template <class T>
void check_extremes(uint32_t seed) {
  const T pool[] = {T(1), T(2), T(-3), T(0), -T(0), T(7), T(-7), std::numeric_limits<T>::infinity(),
                    -std::numeric_limits<T>::infinity(), T(0.5)};
  uint32_t s = seed;
  auto next = [&] { return s = s * 1664525u + 1013904223u; };
  for (int64_t n : {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 257}) {
    for (int nanRate : {0, 1, 2}) {
      const int64_t rows = 5;
      std::vector<T> v(rows * n);
      for (auto& e : v) {
        uint32_t r = next() >> 8;
        e = (nanRate && r % (nanRate == 1 ? 97 : 7) == 0) ? std::numeric_limits<T>::quiet_NaN() : pool[r % 10];
      }
      Tensor x = Tensor::empty(std::is_same_v<T, float> ? DType::F32 : DType::F64, {rows, n});
      std::copy(v.begin(), v.end(), x.mutable_data<T>());
      Tensor mx = max(x, Ax{1}), mn = min(x, Ax{1}), amx = argmax(x, Ax{1}), amn = argmin(x, Ax{1});
      Tensor cmx = max(x, Ax{0}), camx = argmax(x, Ax{0});
      for (int64_t r = 0; r < rows; ++r) {
        const T* p = v.data() + r * n;
        int64_t bx = 0, bn = 0;
        for (int64_t i = 1; i < n; ++i) {
          if (p[bx] == p[bx] && (p[i] != p[i] || p[i] > p[bx])) bx = i;
          if (p[bn] == p[bn] && (p[i] != p[i] || p[i] < p[bn])) bn = i;
        }
        INFO("n " << n << " row " << r << " nan rate " << nanRate);
        CHECK(amx.data<int64_t>()[r] == bx);
        CHECK(amn.data<int64_t>()[r] == bn);
        const T gx = mx.data<T>()[r], gn = mn.data<T>()[r];
        if (p[bx] != p[bx]) CHECK(gx != gx);
        else CHECK(gx == p[bx]);
        if (p[bn] != p[bn]) CHECK(gn != gn);
        else CHECK(gn == p[bn]);
      }
      for (int64_t c = 0; c < n; ++c) {
        int64_t b = 0;
        for (int64_t r = 1; r < rows; ++r) {
          T cur = v[b * n + c], e = v[r * n + c];
          if (cur == cur && (e != e || e > cur)) b = r;
        }
        const T want = v[b * n + c], got = cmx.data<T>()[c];
        INFO("column " << c << " of n " << n);
        CHECK(camx.data<int64_t>()[c] == b);
        if (want != want) CHECK(got != got);
        else CHECK(got == want);
      }
    }
  }
}

TEST_CASE("vectorized max, min, argmax and argmin agree with a scalar reference", "[reduce]") {
  check_extremes<float>(1);
  check_extremes<float>(2);
  check_extremes<double>(3);
  // A long row: the index counting crosses many vectors; the maximum at the very end and at 0.
  Tensor a = arange(0, 100003, 1, DType::F32);
  CHECK(str(argmax(a)) == "100002");
  CHECK(str(argmin(a)) == "0");
  Tensor d = neg(arange(0, 4099, 1, DType::F64));
  CHECK(str(argmax(d)) == "0");
  CHECK(str(argmin(d)) == "4098");
}
