#include <cmath>

#include "Helpers.h"

using namespace tdl::rt;
using namespace tdl::rt::test;

TEST_CASE("float printing: shortest round trip", "[print]") {
  CHECK(format_float(1.0, DType::F32) == "1.0");
  CHECK(format_float(0.1f, DType::F32) == "0.1");
  CHECK(format_float(1e-7f, DType::F32) == "1e-07");
  CHECK(format_float(2.5e16f, DType::F32) == "2.5e+16");
  CHECK(format_float(1e16, DType::F64) == "1e+16");
  CHECK(format_float(1.0f / 3.0f, DType::F32) == "0.33333334");
  CHECK(format_float(1.0 / 3.0, DType::F64) == "0.3333333333333333");
  CHECK(format_float(6.0, DType::F64) == "6.0");
  CHECK(format_float(NAN, DType::F32) == "nan");
  CHECK(format_float(INFINITY, DType::F32) == "inf");
  CHECK(format_float(-INFINITY, DType::F64) == "-inf");
  CHECK(format_float(-0.0, DType::F32) == "-0.0");
  CHECK(format_float(1e15, DType::F64) == "1000000000000000.0");
  CHECK(format_float(0.0001, DType::F64) == "0.0001");
  CHECK(format_float(1e-5, DType::F64) == "1e-05");
  CHECK(format_float(static_cast<float>(0.1), DType::F64) == "0.10000000149011612");
  CHECK(format_float(1.4142135f, DType::F32) == "1.4142135");
}

TEST_CASE("scalar printing", "[print]") {
  CHECK(str(Tensor::scalar(int64_t{1})) == "1");
  CHECK(str(Tensor::scalar(int64_t{-3})) == "-3");
  CHECK(str(Tensor::scalar(true)) == "true");
  CHECK(str(Tensor::scalar(false)) == "false");
  CHECK(str(Tensor::scalar(1.0f)) == "1.0");
  CHECK(str(Tensor::scalar(int32_t{-7})) == "-7");
  CHECK(str(mul(Tensor::scalar(0.0f), Tensor::scalar(-1.0f))) == "-0.0");
  CHECK(str(mul(Tensor::scalar(1e20f), Tensor::scalar(1e20f))) == "inf");
}

TEST_CASE("tensor printing layout", "[print]") {
  CHECK(str(f32({1, 2, 3, 4}, {2, 2})) == "[[1.0, 2.0],\n [3.0, 4.0]]");
  CHECK(str(zeros({2, 2, 2})) == "[[[0.0, 0.0],\n  [0.0, 0.0]],\n [[0.0, 0.0],\n  [0.0, 0.0]]]");
  CHECK(str(i64({-1, 2})) == "[-1, 2]");
  CHECK(str(b8({true, false}, {2, 1})) == "[[true],\n [false]]");
  CHECK(str(zeros({0})) == "[]");
  CHECK(str(zeros({2, 0})) == "[[],\n []]");
  CHECK(str(zeros({1, 1, 1})) == "[[[0.0]]]");
}

TEST_CASE("summarised printing", "[print]") {
  CHECK(str(arange_int(0, 2000)) == "[0, 1, 2, ..., 1997, 1998, 1999]");
  CHECK(str(arange_int(0, 1000)).find("...") == std::string::npos);  // 1000 elements: full
  CHECK(str(reshape(arange_int(0, 2000), {2, 1000})) ==
        "[[0, 1, 2, ..., 997, 998, 999],\n [1000, 1001, 1002, ..., 1997, 1998, 1999]]");
  CHECK(str(reshape(arange_int(0, 1010), {101, 10})) ==
        "[[0, 1, 2, ..., 7, 8, 9],\n [10, 11, 12, ..., 17, 18, 19],\n [20, 21, 22, ..., 27, 28, 29],\n ...,\n"
        " [980, 981, 982, ..., 987, 988, 989],\n [990, 991, 992, ..., 997, 998, 999],\n"
        " [1000, 1001, 1002, ..., 1007, 1008, 1009]]");
  CHECK(str(reshape(arange_int(0, 1002), {501, 2})).find(" ...,\n [996, 997],") != std::string::npos);
}
