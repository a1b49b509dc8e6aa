// The tape at the C++ level: node ids travel with copies, recording only
// inside tapes, gradients and higher order through the recording ops.
#include <catch2/catch.hpp>

#include "vm/NumericOps.h"
#include "vm/autodiff/Ops.h"
#include "vm/autodiff/Tape.h"

using namespace tdl::vm;

TEST_CASE("node ids travel with copies and not with new values", "[autodiff]") {
  Value x = Value::f64(2.0);
  CHECK(x.node() == 0);
  ad::makeLeaf(x);
  Value y = x;
  CHECK(y.node() == x.node());
  CHECK(strong(Value::weakFloat(1.5)).node() == 0);
  Value w = Value::weakFloat(1.5);
  ad::makeLeaf(w);
  CHECK(strong(w).node() == w.node());  // the same value with its dtype decided
  CHECK(binaryValues(tdl::rt::BinaryOp::Mul, x, x).node() == 0);  // no tape: nothing recorded
}

TEST_CASE("a tape records and differentiates; nested tapes give second derivatives", "[autodiff]") {
  Value x = Value::f64(3.0);
  ad::makeLeaf(x);
  ad::Tape outer;
  outer.start(nullptr);
  ad::Tape inner;
  inner.start(nullptr);
  Value y = ad::mul(ad::mul(x, x), x);  // x^3
  inner.stop();
  CHECK(y.node() != 0);
  Value dy = inner.gradient(y, x);      // 3x^2, recorded by the outer tape
  CHECK(dy.rawFloat() == 27.0);
  CHECK(dy.node() != 0);
  outer.stop();
  CHECK(outer.gradient(dy, x).rawFloat() == 18.0);  // 6x
  CHECK(!ad::recording());
  // A source the target does not depend on gets zeros.
  Value z = Value::f64(1.0);
  ad::makeLeaf(z);
  CHECK(inner.gradient(y, z).rawFloat() == 0.0);
  // A non-float source is an error.
  CHECK_THROWS_WITH(inner.gradient(y, Value::i64(1)), "gradient source must be a float tensor, got i64[]");
}

TEST_CASE("ids never repeat after the arena is trimmed", "[autodiff]") {
  uint32_t last;
  {
    ad::Tape t;
    t.start(nullptr);
    Value a = Value::f32(1.0f);
    ad::makeLeaf(a);
    last = a.node();
    t.stop();
  }
  Value b = Value::f32(2.0f);
  ad::makeLeaf(b);
  CHECK(b.node() > last);
}
