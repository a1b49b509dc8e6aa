// Passes and the pipeline, text in → text out (more cases in lit/).
#include <catch2/catch.hpp>

#include <sstream>

#include "Helpers.h"
#include "ir/Pipeline.h"

using namespace tdl::ir;
using namespace tdl::ir::test;

namespace {

std::string run(const std::string& text, const std::vector<std::unique_ptr<Pass>>& passes_in, int rounds = 1) {
  auto m = parse_ok(text);
  Pipeline p;
  for (auto& pass : const_cast<std::vector<std::unique_ptr<Pass>>&>(passes_in)) p.add(std::move(pass));
  PipelineOptions o;
  o.max_rounds = rounds;
  p.run(*m, o);
  REQUIRE(verify(*m).empty());
  return to_string(*m);
}

std::string run(const std::string& text, const char* pass) {
  std::vector<std::unique_ptr<Pass>> v;
  v.push_back(create_pass(pass));
  return run(text, v);
}

std::string canon(const std::string& text) { return to_string(*parse_ok(text)); }

}  // namespace

TEST_CASE("every registered pass can be created; the default pipeline names them", "[ir][passes]") {
  for (const PassInfo& p : registered_passes()) CHECK(create_pass(p.name)->name() == p.name);
  for (std::string_view n : default_pipeline_names()) CHECK(create_pass(n) != nullptr);
  CHECK(create_pass("nope") == nullptr);
}

TEST_CASE("fold evaluates with the runtime and leaves failing ops", "[ir][passes][fold]") {
  std::string in = R"(
func @f() -> (i64[2], i64[]) {
  %a = constant() {value = dense<[7, -7] : i64[2]>} : i64[2]
  %b = constant() {value = dense<[2] : i64[]>} : i64[]
  %z = constant() {value = dense<[0] : i64[]>} : i64[]
  %q = floordiv(%a, %b) : i64[2]
  %bad = floordiv(%b, %z) : i64[]
  return(%q, %bad)
}
)";
  std::string out = run(in, "fold");
  CHECK_THAT(out, Catch::Contains("dense<[3, -4] : i64[2]>"));  // Python floor division
  CHECK_THAT(out, Catch::Contains("floordiv(%1, %2)"));         // division by zero stays
}

TEST_CASE("cse merges pure ops, commutative operands, not effects", "[ir][passes][cse]") {
  std::string in = R"(
func @f(%x: f32[3], %y: f32[3]) -> (f32[3], f32[3], f32[3], f32[3]) {
  %a = add(%x, %y) : f32[3]
  %b = add(%y, %x) : f32[3]
  %c = sub(%x, %y) : f32[3]
  %d = sub(%y, %x) : f32[3]
  %r1 = random() {dist = "uniform"} : f32[3]
  %r2 = random() {dist = "uniform"} : f32[3]
  %s = add(%r1, %r2) : f32[3]
  return(%a, %b, %c, %d)
}
)";
  std::string out = run(in, "cse");
  CHECK_THAT(out, Catch::Contains("return(%2, %2, %3, %4)"));
  CHECK_THAT(out, Catch::Contains("%6 = random()"));
}

TEST_CASE("dce keeps effects and removes dead loops", "[ir][passes][dce]") {
  std::string in = R"(
func @f(%x: f32[3], %n: i64[]) -> (f32[3]) {
  %dead = exp(%x) : f32[3]
  %z = constant() {value = dense<[0] : i64[]>} : i64[]
  %r = while(%z) : i64[] {
  ^cond(%a: i64[]):
    %c = lt(%a, %n) : bool[]
    yield(%c)
  } {
  ^body(%b: i64[]):
    %one = constant() {value = dense<[1] : i64[]>} : i64[]
    %b2 = add(%b, %one) : i64[]
    yield(%b2)
  }
  print(%n) {format = "{}"}
  return(%x)
}
)";
  std::string out = run(in, "dce");
  CHECK(out == canon("func @f(%x: f32[3], %n: i64[]) -> (f32[3]) {\n  print(%n) {format = \"{}\"}\n  return(%x)\n}\n"));
}

TEST_CASE("specialize replaces symbols and what follows from them", "[ir][passes][specialize]") {
  std::string in = R"(
func @f<N, ?0>(%x: f32[N, 4]) -> (f32[?0, 4]) {
  %s = slice(%x) {start = [1, 0], step = [1, 1], stop = [9223372036854775807, 4]} : f32[?0, 4]
  %d = dim(%x) {axis = 0} : i64[]
  return(%s)
}
)";
  std::vector<std::unique_ptr<Pass>> v;
  v.push_back(create_specialize_pass({{"N", 5}}));
  v.push_back(create_pass("simplify"));
  std::string out = run(in, v);
  CHECK_THAT(out, Catch::StartsWith("func @f(%0: f32[5, 4]) -> (f32[4, 4]) {"));
  CHECK_THAT(out, Catch::Contains("dense<[5] : i64[]>"));  // dim folded by simplify
}

TEST_CASE("the pipeline verifies after a changing pass and names a breaking pass", "[ir][pipeline]") {
  struct Breaker : Pass {
    std::string_view name() const override { return "breaker"; }
    bool run(Function& f) override {
      f.result_types.clear();  // return no longer matches
      return true;
    }
  };
  auto m = parse_ok("func @f(%x: f32[]) -> (f32[]) {\n  return(%x)\n}\n");
  Pipeline p;
  p.add(std::make_unique<Breaker>());
  CHECK_THROWS_WITH(p.run(*m), Catch::StartsWith("pass 'breaker' broke the IR of @f:") &&
                                   Catch::Contains("'return': returns 1 values, expected 0"));
}

TEST_CASE("print-after-all and time-passes", "[ir][pipeline]") {
  auto m = parse_ok("func @f(%x: f32[]) -> (f32[]) {\n  %y = neg(%x) : f32[]\n  %z = neg(%y) : f32[]\n  return(%z)\n}\n");
  std::ostringstream log;
  PipelineOptions o;
  o.print_after_all = true;
  o.time_passes = true;
  o.log = &log;
  o.max_rounds = kDefaultMaxRounds;
  CHECK(default_pipeline()->run(*m, o));
  CHECK_THAT(log.str(), Catch::Contains("// ----- after simplify -----"));
  CHECK_THAT(log.str(), Catch::Contains("// ----- after dce (no change) -----"));
  CHECK_THAT(log.str(), Catch::Contains("// pass timing"));
  CHECK(to_string(*m) == "func @f(%0: f32[]) -> (f32[]) {\n  return(%0)\n}\n");
}
