#include "Helpers.h"

#include <cmath>
#include <cstring>

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

TEST_CASE("gemm: transposed operands, alpha/beta updates, in place only when unique", "[matmul]") {
  Tensor a = f32({1, 2, 3, 4, 5, 6}, {2, 3});  // a^T is [3, 2]
  Tensor b = f32({1, 0, 0, 1}, {2, 2});
  // a^T @ b == matmul(transpose(a), b)
  CHECK(str(gemm(a, b, std::nullopt, true, false, 1.0, 0.0)) == str(matmul(transpose(a, {1, 0}), b)));
  // a @ a^T, both read from a
  CHECK(str(gemm(a, a, std::nullopt, false, true, 1.0, 0.0)) == "[[14.0, 32.0],\n [32.0, 77.0]]");
  // c - 0.5 * (a^T @ b), the caller's c untouched (it is shared)
  Tensor c = ones({3, 2});
  Tensor keep = c;
  Tensor u = gemm(a, b, c, true, false, -0.5, 1.0);
  CHECK(str(u) == "[[0.5, -1.0],\n [0.0, -1.5],\n [-0.5, -2.0]]");
  CHECK(str(keep) == str(ones({3, 2})));
  // a unique c is updated in place (same buffer)
  Tensor d = ones({3, 2});
  const void* before = d.data<float>();
  Tensor v = gemm(a, b, std::move(d), true, false, 1.0, 1.0);
  CHECK(static_cast<const void*>(v.data<float>()) == before);
  CHECK(str(v) == "[[2.0, 5.0],\n [3.0, 6.0],\n [4.0, 7.0]]");
  // an empty contraction: beta * c (or zeros)
  CHECK(str(gemm(zeros({0, 2}), zeros({0, 3}), std::nullopt, true, false, 1.0, 0.0)) == str(zeros({2, 3})));
  CHECK(str(gemm(zeros({0, 2}), zeros({0, 3}), ones({2, 3}), true, false, 1.0, 1.0)) == str(ones({2, 3})));
  // f64 and the error of mismatched inner dims (named as op(a) and op(b))
  Tensor a64 = cast(a, DType::F64);
  CHECK(gemm(a64, a64, std::nullopt, true, false, 1.0, 0.0).dtype() == DType::F64);
  CHECK_THROWS_WITH(gemm(a, b, std::nullopt, false, false, 1.0, 0.0), "cannot multiply shapes [2, 3] and [2, 2] (3 != 2)");
}

// Compiled code runs independent small products at once in bands of columns or rows
// (codegen's tdl_op_group): where bands_same_bits() says so, they must give the bits of the
// one call gemm() makes. This holds for the installed OpenBLAS's kernels, checked here over
// shapes on both sides of its small-matrix and k-blocking thresholds (OpenBLAS's AVX-512 and AVX
// kernels; its Haswell ones promise nothing: blas_bands_exact).
TEST_CASE("GemmBands: bands of columns or rows give the whole product's bits where promised", "[matmul]") {
  auto fill = [](Shape s, double seed) {
    int64_t n = 1;
    for (int64_t d : s) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<float>(std::sin(seed + 0.37 * static_cast<double>(i)));
    return f32(v, s);
  };
  int checked = 0;
  for (DType dt : {DType::F32, DType::F64})
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      for (int64_t m : {1, 7, 16, 17, 20, 32, 128})
        for (int64_t n : {32, 48, 128, 256, 512})
          for (int64_t k : {17, 32, 128, 256, 300})
            for (int withC = 0; withC < 2; ++withC) {
              if (dt == DType::F64 && (n > 128 || m > 32)) continue;  // f64: fewer shapes
              auto fillT = [&](Shape s, double seed) { return cast(fill(s, seed), dt); };
              Tensor a = fillT(ta ? Shape{k, m} : Shape{m, k}, 0.1);
              Tensor b = fillT(tb ? Shape{n, k} : Shape{k, n}, 0.7);
              std::optional<Tensor> c;
              if (withC) c = fillT({m, n}, 1.3);
              Tensor want = gemm(a, b, c, ta, tb, 0.5, withC ? 1.0 : 0.0);
              std::optional<Tensor> c2;
              if (withC) c2 = fillT({m, n}, 1.3);
              auto g = gemm_bands(a, b, c2, ta, tb, 0.5, withC ? 1.0 : 0.0);
              REQUIRE(g.has_value());
              CHECK(!c2.has_value());  // taken over
              if (!g->bands_same_bits()) continue;
              for (int64_t parts : {2, 3, 4}) {
                // Columns, then (for another accumulator) rows in bands of 8.
                const int64_t w = (n / parts + 15) / 16 * 16;
                for (int64_t j0 = 0; j0 < n; j0 += w) g->run(j0, std::min(n, j0 + w));
                INFO("ta " << ta << " tb " << tb << " m " << m << " n " << n << " k " << k << " c " << withC
                           << " parts " << parts);
                CHECK(std::memcmp(g->out.raw(), want.raw(), want.nbytes()) == 0);
                std::optional<Tensor> c3;
                if (withC) c3 = fillT({m, n}, 1.3);
                auto r = gemm_bands(a, b, c3, ta, tb, 0.5, withC ? 1.0 : 0.0);
                REQUIRE(r.has_value());
                const int64_t h = std::max<int64_t>(8, (m / parts + 7) / 8 * 8);
                for (int64_t i0 = 0; i0 < m; i0 += h) r->run_rows(i0, std::min(m, i0 + h));
                CHECK(std::memcmp(r->out.raw(), want.raw(), want.nbytes()) == 0);
                ++checked;
                if (withC) break;  // c was updated in place: one split only
              }
            }
  // With kernels whose bits depend on the band (OPENBLAS_CORETYPE=Haswell) nothing is
  // promised, and compiled code runs each product whole.
  if (blas_bands_exact()) CHECK(checked > 100);
  else CHECK(checked == 0);
  // Not a BLAS product: left to gemm() (its errors, its small-k kernel), c untouched.
  std::optional<Tensor> c = ones({2, 2});
  CHECK(!gemm_bands(ones({2, 3}), ones({2, 2}), c, false, false, 1.0, 1.0));
  CHECK(c.has_value());
  CHECK(!gemm_bands(ones({2, 3}), ones({3, 2}), c, false, false, 1.0, 1.0));  // k = 3: small-k kernel
  CHECK(!gemm_bands(ones({2, 2, 40}), ones({40, 64}), c, false, false, 1.0, 0.0));
  CHECK(!gemm_bands(i32({1, 2}, {1, 2}), i32({3, 4}, {2, 1}), c, false, false, 1.0, 0.0));
  CHECK(c.has_value());
}
