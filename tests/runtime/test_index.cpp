#include "Helpers.h"

using namespace tdl::rt;
using namespace tdl::rt::test;

using I = IndexItem;

TEST_CASE("indexing from the conformance suite", "[index]") {
  Tensor x = reshape(arange_int(0, 12), {3, 4});
  CHECK(str(get_index(x, {I::at(1)})) == "[4, 5, 6, 7]");
  CHECK(str(get_index(x, {I::at(-1), I::at(-2)})) == "10");
  CHECK(str(get_index(x, {I::all(), I::at(1)})) == "[1, 5, 9]");
  CHECK(str(get_index(x, {I::slice(0, 2), I::slice(1, 3)})) == "[[1, 2],\n [5, 6]]");
  CHECK(str(get_index(x, {I::slice({}, {}, 2), I::slice({}, {}, 3)})) == "[[0, 3],\n [8, 11]]");
  CHECK(str(gather(x, i64({2, 0}))) == "[[8, 9, 10, 11],\n [0, 1, 2, 3]]");
  CHECK(str(get_index(get_index(x, {I::slice(1), I::all()}), {I::at(0), I::at(3)})) == "7");
  CHECK(get_index(x, {I::all(), I::slice(-1)}).shape() == Shape{3, 1});
  CHECK(str(get_index(x, {I::at(2), I::slice({}, {}, -1)})) == "[11, 10, 9, 8]");
}

TEST_CASE("slices follow Python", "[index]") {
  Tensor v = arange_int(0, 10);
  auto sl = [&](std::optional<int64_t> a, std::optional<int64_t> b, std::optional<int64_t> c) {
    return str(get_index(v, {I::slice(a, b, c)}));
  };
  CHECK(sl({}, {}, -1) == "[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]");
  CHECK(sl(8, 2, -2) == "[8, 6, 4]");
  CHECK(sl(-3, {}, {}) == "[7, 8, 9]");
  CHECK(sl({}, -7, {}) == "[0, 1, 2]");
  CHECK(sl(100, {}, {}) == "[]");
  CHECK(sl(-100, 2, {}) == "[0, 1]");
  CHECK(sl(100, {}, -3) == "[9, 6, 3, 0]");
  CHECK(sl({}, -100, -4) == "[9, 5, 1]");
  CHECK(sl(3, 3, {}) == "[]");
  CHECK(sl(2, 8, 3) == "[2, 5]");
  CHECK(sl(INT64_MIN, INT64_MAX, {}) == "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]");
  CHECK(sl(INT64_MAX, INT64_MIN, -5) == "[9, 4]");
  CHECK(error_of([&] { sl({}, {}, 0); }) == "slice step cannot be zero");
}

TEST_CASE("index errors", "[index]") {
  Tensor x = reshape(arange_int(0, 12), {3, 4});
  CHECK(error_of([&] { get_index(x, {I::at(3)}); }) == "index 3 is out of range for axis 0 of size 3");
  CHECK(error_of([&] { get_index(x, {I::at(0), I::at(-5)}); }) == "index -5 is out of range for axis 1 of size 4");
  CHECK(error_of([&] { get_index(i64({1, 2, 3}), {I::at(5)}); }) == "index 5 is out of range for axis 0 of size 3");
  CHECK(!error_of([&] { get_index(x, {I::at(0), I::at(0), I::at(0)}); }).empty());
  CHECK(error_of([&] { gather(x, i64({0, 3})); }) == "index 3 is out of range for axis 0 of size 3");
  CHECK(!error_of([&] { get_index(zeros({0}), {I::at(0)}); }).empty());
  CHECK(str(get_index(Tensor::scalar(5.0f), {})) == "5.0");
}

TEST_CASE("set_index broadcasts and casts", "[index]") {
  Tensor a = zeros({3});
  Tensor b = a;
  set_index(a, {I::at(1)}, Tensor::scalar(5.0f));
  CHECK(str(a) == "[0.0, 5.0, 0.0]");
  CHECK(str(b) == "[0.0, 0.0, 0.0]");
  Tensor m = ones({2, 3});
  Tensor part = get_index(m, {I::all(), I::slice(1)});
  set_index(m, {I::all(), I::slice(1)}, mul(part, Tensor::scalar(3.0f)));
  CHECK(str(m) == "[[1.0, 3.0, 3.0],\n [1.0, 3.0, 3.0]]");
  set_index(m, {I::at(0)}, f32({7, 8, 9}));
  CHECK(str(get_index(m, {I::at(0)})) == "[7.0, 8.0, 9.0]");
  set_index(m, {I::at(1), I::all()}, Tensor::scalar(0.5));
  CHECK(str(get_index(m, {I::at(1)})) == "[0.5, 0.5, 0.5]");
  Tensor v = i64({1, 2});
  set_index(v, {I::at(0)}, Tensor::scalar(int64_t{100}));
  CHECK(str(v) == "[100, 2]");
  // a column broadcast into a 2-D region
  Tensor g = zeros({3, 2}, DType::I32);
  set_index(g, {I::slice({}, {}, -1), I::all()}, i64({1, 2, 3}, {3, 1}));
  CHECK(str(g) == "[[3, 3],\n [2, 2],\n [1, 1]]");
  CHECK(error_of([&] { set_index(g, {I::all()}, i64({1, 2, 3})); }) == "cannot broadcast shape [3] to [3, 2]");
  CHECK(error_of([&] { set_index(g, {I::at(7)}, Tensor::scalar(int64_t{1})); }) ==
        "index 7 is out of range for axis 0 of size 3");
  // cast on store: float into int tensor truncates
  set_index(g, {I::at(0), I::at(0)}, Tensor::scalar(2.9f));
  CHECK(g.item_int64(0) == 2);
  // scatter
  Tensor s = zeros({3, 2});
  scatter(s, i64({2, 0}), f32({1, 2}, {2, 1}));
  CHECK(str(s) == "[[2.0, 2.0],\n [0.0, 0.0],\n [1.0, 1.0]]");
}
