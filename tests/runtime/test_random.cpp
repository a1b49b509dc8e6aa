#include <cmath>

#include "Helpers.h"

using namespace tdl::rt;
using namespace tdl::rt::test;

TEST_CASE("Philox4x32-10 known answers (Random123 kat_vectors)", "[random]") {
  using A4 = std::array<uint32_t, 4>;
  CHECK(philox4x32_10({0, 0, 0, 0}, {0, 0}) == A4{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u});
  CHECK(philox4x32_10({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu}) ==
        A4{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu});
  CHECK(philox4x32_10({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, {0xa4093822u, 0x299f31d0u}) ==
        A4{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u});
}

TEST_CASE("seeded streams are reproducible", "[random]") {
  seed(42);
  Tensor a = rand({1000});
  seed(42);
  Tensor b = rand({1000});
  CHECK(all(eq(a, b)).scalar_as_bool());
  CHECK(all(ge(a, Tensor::scalar(0.0f))).scalar_as_bool());
  CHECK(all(lt(a, Tensor::scalar(1.0f))).scalar_as_bool());
  CHECK(std::abs(mean(a).scalar_as_double() - 0.5) < 0.05);
  Tensor c = rand({1000});
  CHECK(!all(eq(a, c)).scalar_as_bool());  // the counter moved on
  // Splitting a draw does not change the stream: 4 + 4 values == 8 values.
  seed(3);
  Tensor x8 = rand({8});
  seed(3);
  Tensor x4a = rand({4}), x4b = rand({4});
  CHECK(all(eq(x8, concat({x4a, x4b}))).scalar_as_bool());
  // A big parallel draw equals its prefix drawn alone.
  seed(9);
  Tensor big = rand({1 << 20});
  seed(9);
  Tensor small = rand({100});
  CHECK(all(eq(get_index(big, {IndexItem::slice(0, 100)}), small)).scalar_as_bool());
  RngState st = rng_state();
  Tensor r1 = rand({5});
  set_rng_state(st);
  CHECK(all(eq(rand({5}), r1)).scalar_as_bool());
  CHECK(rand({2}, DType::F64).dtype() == DType::F64);
  CHECK(!error_of([] { rand({2}, DType::I32); }).empty());
}

TEST_CASE("normal, randint, permutation", "[random]") {
  seed(7);
  Tensor n = randn({20000});
  CHECK(std::abs(mean(n).scalar_as_double()) < 0.05);
  CHECK(std::abs(mean(mul(n, n)).scalar_as_double() - 1.0) < 0.05);
  CHECK(all(isfinite(n)).scalar_as_bool());
  Tensor n64 = randn({20001}, DType::F64);
  CHECK(std::abs(mean(n64).scalar_as_double()) < 0.05);
  Tensor r = randint(0, 10, {500});
  CHECK(r.dtype() == DType::I64);
  CHECK(all(ge(r, Tensor::scalar(int64_t{0}))).scalar_as_bool());
  CHECK(all(lt(r, Tensor::scalar(int64_t{10}))).scalar_as_bool());
  CHECK(max(r).scalar_as_int64() == 9);
  CHECK(min(randint(-5, -3, {100})).scalar_as_int64() == -5);
  CHECK(!error_of([] { randint(3, 3, {1}); }).empty());
  Tensor p = permutation(10);
  CHECK(str(sum(p)) == "45");
  CHECK(p.numel() == 10);
  Tensor sorted = zeros({10}, DType::I64);
  for (int i = 0; i < 10; ++i) sorted.mutable_data<int64_t>()[p.item_int64(i)] += 1;
  CHECK(all(eq(sorted, Tensor::scalar(int64_t{1}))).scalar_as_bool());
  CHECK(permutation(0).numel() == 0);
}
