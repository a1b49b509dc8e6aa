// The only list of passes, and the default pipeline (DESIGN habit 6). Fusion and buffer
// reuse will join: add a line to kPasses and to kDefaultPipeline.
#include "ir/Pipeline.h"

#include <fmt/format.h>

#include <iostream>
#include <map>

#include "ir/Printer.h"
#include "ir/Verifier.h"

namespace tdl::ir {

namespace {

const std::vector<PassInfo> kPasses = {
    {"fold", "constant folding: pure ops on constants, evaluated by the runtime kernels", create_constant_fold_pass},
    {"simplify", "algebraic simplification by a rule list (x * 1 -> x, ...)", create_simplify_pass},
    {"cse", "common subexpression elimination of pure ops, scoped to regions", create_cse_pass},
    {"dce", "dead code: unused pure ops and results, constant cond/while", create_dce_pass},
    {"ifconvert", "small conds that compute scalars and update one element -> selects (branch-free loops)", create_if_convert_pass},
    {"loops", "sizes hoisted out of loops; counted loops: overflow guards and index checks dropped", create_loops_pass},
    {"fusion", "chains of elementwise ops on same-shape tensors and scalars -> one fused loop", create_fusion_pass},
    {"gemm", "matmul of transposed operands, and an update c + k * (a @ b) -> one BLAS call", create_gemm_pass},
    {"conv", "large convolutions (im2col products, and their input gradients) -> one direct kernel each, no patches in memory", create_conv_pass},
    {"qgemm", "gemm of dequantize(quantize(a)) and dequantize(int8 w) -> one int8 qgemm (tdl export --quantize int8)", create_qgemm_pass},
};

const std::vector<std::string_view> kDefaultPipeline = {
    "simplify",
    "fold",
    "cse",
    "ifconvert",
    "loops",
    "dce",
    "fusion",
    "gemm",
    "conv",
};

}  // namespace

const std::vector<PassInfo>& registered_passes() { return kPasses; }
const std::vector<std::string_view>& default_pipeline_names() { return kDefaultPipeline; }

std::unique_ptr<Pass> create_pass(std::string_view name) {
  for (const PassInfo& p : kPasses)
    if (p.name == name) return p.create();
  return nullptr;
}

std::unique_ptr<Pipeline> default_pipeline() {
  auto p = std::make_unique<Pipeline>();
  for (std::string_view n : kDefaultPipeline) p->add(create_pass(n));
  return p;
}

bool Pipeline::run(Module& m, const PipelineOptions& opts) {
  std::ostream& log = opts.log ? *opts.log : std::cerr;
  std::map<std::string_view, double> seconds;
  std::vector<std::string_view> order;
  bool changed_any = false;
  for (int round = 0; round < std::max(1, opts.max_rounds); ++round) {
    bool changed_round = false;
    for (auto& pass : passes_) {
      for (auto& f : m.functions) {
        auto t0 = std::chrono::steady_clock::now();
        bool changed = pass->run(*f);
        std::chrono::duration<double> dt = std::chrono::steady_clock::now() - t0;
        if (!seconds.count(pass->name())) order.push_back(pass->name());
        seconds[pass->name()] += dt.count();
        changed_round |= changed;
        if (changed && opts.verify_each) {
          auto errors = verify(*f);
          if (!errors.empty())
            throw PassFailure(fmt::format("pass '{}' broke the IR of @{}:\n  {}", pass->name(), f->name,
                                          fmt::join(errors, "\n  ")));
        }
        if (opts.print_after_all) {
          log << "// ----- after " << pass->name() << (changed ? "" : " (no change)") << " -----\n";
          print(log, *f);
        }
      }
    }
    changed_any |= changed_round;
    if (!changed_round) break;
  }
  if (opts.time_passes) {
    double total = 0;
    for (auto& [n, s] : seconds) total += s;
    log << "// pass timing (total " << fmt::format("{:.3f}", total * 1e3) << " ms)\n";
    for (std::string_view n : order) log << fmt::format("//   {:<10} {:9.3f} ms\n", n, seconds[n] * 1e3);
  }
  return changed_any;
}

}  // namespace tdl::ir
