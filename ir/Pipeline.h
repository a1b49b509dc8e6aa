// The pass pipeline: runs passes in order, verifies after each pass that changed
// something (naming the pass that broke an invariant), prints after each pass and times
// them on request.
#pragma once

#include <chrono>
#include <iosfwd>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "ir/Pass.h"

namespace tdl::ir {

struct PassInfo {
  std::string_view name;
  std::string_view description;
  std::unique_ptr<Pass> (*create)();
};

// Every pass that can be named (tdl-opt --pass=...), in one list.
const std::vector<PassInfo>& registered_passes();
// nullptr for an unknown name.
std::unique_ptr<Pass> create_pass(std::string_view name);
// The names of the default optimization pipeline, in order.
const std::vector<std::string_view>& default_pipeline_names();

// A pass broke an invariant: what() names the pass and lists the verifier's messages.
struct PassFailure : std::runtime_error {
  explicit PassFailure(const std::string& m) : std::runtime_error(m) {}
};

struct PipelineOptions {
  bool verify_each = true;      // verify after every pass that changed something
  bool print_after_all = false; // print the IR after every pass to `log`
  bool time_passes = false;     // a table of time per pass to `log` at the end
  int max_rounds = 1;           // repeat the whole list until nothing changes (at most this often)
  std::ostream* log = nullptr;  // defaults to std::cerr
};

class Pipeline {
 public:
  void add(std::unique_ptr<Pass> p) { passes_.push_back(std::move(p)); }
  size_t size() const { return passes_.size(); }
  // Runs on every function of m; returns whether anything changed. Throws PassFailure.
  bool run(Module& m, const PipelineOptions& opts = {});

 private:
  std::vector<std::unique_ptr<Pass>> passes_;
};

// The default pipeline (default_pipeline_names), with max_rounds to a fixed point.
std::unique_ptr<Pipeline> default_pipeline();
inline constexpr int kDefaultMaxRounds = 4;  // fold/simplify/cse/dce settle in 2-3 rounds

}  // namespace tdl::ir
