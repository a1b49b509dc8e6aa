// Value: inline scalars, refcounting, copy-on-write helpers, printing.
#include <catch2/catch.hpp>

#include "vm/Format.h"
#include "vm/Value.h"

using namespace tdl::vm;
using tdl::rt::DType;

TEST_CASE("scalars are inline and small", "[value]") {
  STATIC_REQUIRE(sizeof(Value) == 16);
  Value v = Value::f32(1.5f);
  CHECK(v.isScalar());
  CHECK_FALSE(v.isHeap());
  CHECK(v.dtype() == DType::F32);
  CHECK(v.asDouble() == 1.5);
  Value z;  // zeroed memory and default values are none
  CHECK(z.isNone());
}

TEST_CASE("heap values are refcounted", "[value]") {
  Value a = makeList({Value::i64(1), makeStr("s")});
  CHECK(a.unique());
  Value b = a;
  CHECK_FALSE(a.unique());
  CHECK(a.obj() == b.obj());
  b = Value();
  CHECK(a.unique());
}

TEST_CASE("uniqueSeq copies only shared lists", "[value]") {
  Value a = makeList({Value::i64(1)});
  Obj* before = a.obj();
  uniqueSeq(a)->items[0] = Value::i64(2);
  CHECK(a.obj() == before);  // unshared: in place
  Value b = a;
  uniqueSeq(a)->items[0] = Value::i64(3);
  CHECK(a.obj() != b.obj());
  CHECK(str(b) == "[2]");
  CHECK(str(a) == "[3]");
}

TEST_CASE("rank-0 tensors become inline scalars", "[value]") {
  Value v = fromTensor(tdl::rt::Tensor::scalar(int32_t{7}));
  CHECK(v.isScalar());
  CHECK(v.dtype() == DType::I32);
  CHECK_FALSE(v.weak());
  CHECK(str(v) == "7");
}

TEST_CASE("printing follows SPEC 8", "[value][format]") {
  CHECK(str(makeTuple({Value::i64(1)})) == "(1,)");
  CHECK(str(makeTuple({Value::i64(1), makeStr("s")})) == "(1, \"s\")");
  CHECK(str(makeStr("raw")) == "raw");
  CHECK(str(Value::weakFloat(0.1)) == "0.1");
  CHECK(str(Value::f64(0.1)) == "0.1");
  CHECK(str(Value::weakFloat(6.0)) == "6.0");
  CHECK(str(Value::boolean(true)) == "true");
  CHECK(str(Value::dtype(DType::F64)) == "f64");
  auto names = std::make_shared<const std::vector<std::string>>(std::vector<std::string>{"w", "b"});
  CHECK(str(makeRecord(names, {Value::weakFloat(1.0), makeStr("x")})) == "{w: 1.0, b: \"x\"}");
}

TEST_CASE("format specs", "[format]") {
  CHECK(formatWithSpec(Value::weakFloat(0.123456), ".3f") == "0.123");
  CHECK(formatWithSpec(Value::i64(42, true), "05d") == "00042");
  CHECK(formatWithSpec(Value::i64(7, true), ">3") == "  7");
  CHECK(formatWithSpec(makeStr("ab"), "<4") == "ab  ");
}
