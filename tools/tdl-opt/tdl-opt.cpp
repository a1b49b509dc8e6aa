// tdl-opt: the IR's text-in → passes → text-out driver.
//   tdl-opt FILE.ir [--pass=cse,dce | --pipeline=default] [--specialize N=4,B=2]
//           [--print-after-all] [--time-passes] [--no-verify-each] [-o OUT]
// Prints the resulting IR to stdout (never the input's comments). Bad input:
// `FILE:LINE:COL: error: ...` (or the verifier's messages) on stderr, exit 1; usage
// errors exit 2; internal errors exit 3.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "ir/Parser.h"
#include "ir/Pipeline.h"
#include "ir/Printer.h"
#include "ir/Verifier.h"
#include "runtime/Error.h"

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep))
    if (!item.empty()) out.push_back(item);
  return out;
}

int fail(const std::string& message) {
  std::cerr << message << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace tdl::ir;
  CLI::App app{"tdl-opt: run TDL IR passes on IR text"};
  std::string file, passes, pipeline, specialize, out_path;
  bool print_after_all = false, time_passes = false, no_verify = false, list = false;
  app.add_option("file", file, "IR text file ('-' for stdin)");
  app.add_option("--pass", passes, "comma-separated passes to run in order");
  app.add_option("--pipeline", pipeline, "a named pipeline: default");
  app.add_option("--specialize", specialize, "symbolic dim sizes, e.g. N=4,B=2 (runs first)");
  app.add_flag("--print-after-all", print_after_all, "print the IR after every pass (stderr)");
  app.add_flag("--time-passes", time_passes, "time per pass (stderr)");
  app.add_flag("--no-verify-each", no_verify, "skip the verifier after changing passes");
  app.add_flag("--list-passes", list, "list the passes and exit");
  app.add_option("-o", out_path, "write the IR here instead of stdout");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (list) {
    for (const PassInfo& p : registered_passes()) std::cout << fmt::format("{:<10} {}\n", p.name, p.description);
    std::cout << fmt::format("{:<10} {}\n", "default", fmt::join(default_pipeline_names(), ","));
    return 0;
  }
  if (file.empty()) {
    std::cerr << "tdl-opt: error: no input file\n";
    return 2;
  }
  try {
    std::string text;
    if (file == "-") {
      text.assign(std::istreambuf_iterator<char>(std::cin), {});
    } else {
      std::ifstream in(file, std::ios::binary);
      if (!in) return fail(fmt::format("{}: error: cannot open the file", file));
      text.assign(std::istreambuf_iterator<char>(in), {});
    }
    std::unique_ptr<Module> m;
    try {
      m = parse_module(text);
    } catch (const ParseError& e) {
      return fail(fmt::format("{}:{}", file, e.what()));
    }
    if (auto errors = verify(*m); !errors.empty())
      return fail(fmt::format("{}: error: invalid IR:\n  {}", file, fmt::join(errors, "\n  ")));

    Pipeline p;
    int rounds = 1;
    if (!specialize.empty()) {
      std::map<std::string, int64_t> sizes;
      for (const std::string& kv : split(specialize, ',')) {
        auto eq = kv.find('=');
        int64_t v = -1;
        try {
          if (eq != std::string::npos) v = std::stoll(kv.substr(eq + 1));
        } catch (const std::exception&) {
        }
        if (eq == std::string::npos || v < 0) {
          std::cerr << "tdl-opt: error: --specialize wants NAME=SIZE, got '" << kv << "'\n";
          return 2;
        }
        sizes[kv.substr(0, eq)] = v;
      }
      p.add(create_specialize_pass(std::move(sizes)));
    }
    if (!pipeline.empty()) {
      if (pipeline != "default") {
        std::cerr << "tdl-opt: error: unknown pipeline '" << pipeline << "'\n";
        return 2;
      }
      for (std::string_view n : default_pipeline_names()) p.add(create_pass(n));
      rounds = kDefaultMaxRounds;
    }
    for (const std::string& n : split(passes, ',')) {
      auto pass = create_pass(n);
      if (!pass) {
        std::cerr << "tdl-opt: error: unknown pass '" << n << "' (see --list-passes)\n";
        return 2;
      }
      p.add(std::move(pass));
    }
    PipelineOptions opts;
    opts.verify_each = !no_verify;
    opts.print_after_all = print_after_all;
    opts.time_passes = time_passes;
    opts.max_rounds = rounds;
    try {
      p.run(*m, opts);
    } catch (const PassFailure& e) {
      return fail(fmt::format("{}: error: {}", file, e.what()));
    }
    if (out_path.empty()) {
      print(std::cout, *m);
    } else {
      std::ofstream out(out_path);
      print(out, *m);
      if (!out) return fail(fmt::format("{}: error: cannot write the file", out_path));
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "internal error: " << e.what() << "\n";
    return 3;
  }
}
