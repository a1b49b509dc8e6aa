// The `tdl` command line driver (SPEC §10). Exit statuses (SPEC §9): 0 ok,
// 1 script error, 2 usage error, 3 internal error.
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <cstdio>
#include <cstdlib>
#include <regex>
#include <string>
#include <vector>

#include "frontend/AstPrinter.h"
#include "frontend/Doc.h"
#include "frontend/Frontend.h"
#include "frontend/Parser.h"
#include "codegen/Ptx.h"
#include "runtime/Matmul.h"
#include "tools/Commands.h"
#include "tools/ModelValue.h"
#include "tools/lsp/LanguageServer.h"
#include "vm/Vm.h"

#ifndef TDL_VERSION
#define TDL_VERSION "0.0.0"
#endif

namespace tdl {

namespace {

constexpr int kExitOk = 0, kExitScript = 1, kExitUsage = 2, kExitInternal = 3;

struct GlobalOptions {
  std::string diagnostics = "text";
};

void configureDiags(Compilation& c, const GlobalOptions& g) {
  c.diags.setJson(g.diagnostics == "json");
  c.diags.setColor(g.diagnostics != "json" && isatty(2) && std::getenv("NO_COLOR") == nullptr);
}

int cmdCheck(const std::string& file, const GlobalOptions& g) {
  Compilation c;
  configureDiags(c, g);
  c.load(file, SemaOptions{});
  return c.ok ? kExitOk : kExitScript;
}

int cmdEmit(const std::string& file, const std::string& stage, const GlobalOptions& g, const EmitOptions& eo) {
  Compilation c;
  configureDiags(c, g);
  if (!c.load(file, SemaOptions{})) return kExitScript;
  if (stage == "ast") {
    std::string text = printAst(c.loader->main());
    std::fwrite(text.data(), 1, text.size(), stdout);
    return kExitOk;
  }
  return emitStage(c, stage, eo);
}

int usage(const std::string& msg) {
  fmt::print(stderr, "tdl: error: {}\nRun 'tdl help' for usage.\n", msg);
  return kExitUsage;
}

// `tdl doc --json`: every builtin's entry, then every standard module's fns.
std::string docJsonText() {
  nlohmann::json all = nlohmann::json::array();
  auto add = [&](const DocEntry& e, const char* kind) {
    all.push_back({{"name", e.name}, {"kind", kind}, {"signature", e.signature}, {"summary", e.summary},
                   {"text", e.text}, {"example", e.example}});
  };
  for (const DocEntry& e : builtinDocs()) add(e, "builtin");
  for (const std::string& m : standardModules()) {
    std::string err;
    for (const DocEntry& e : moduleDocs(m, err)) add(e, "fn");
  }
  return all.dump(1) + "\n";
}

const char* kHelp = R"(tdl — the TDL tensor language

Usage:
  tdl run FILE [ARGS...]     run a script (also: tdl FILE [ARGS...])
      --eager                run graph fns eagerly in the VM
      --trace-report         print per graph fn its traces and calls served
      --profile              time per op kind and per graph fn
      --device cpu|cuda|emu|auto  where graph fns run (emu: the GPU path on an emulated device)
      --gpu-arch ARCH        the NVIDIA arch for --device cuda (default sm_90)
      --np N                 run as N processes through mpirun (the dist module)
  tdl check FILE             parse and check only; report every diagnostic
  tdl emit FILE --stage ast|bytecode|ir|opt|llvm|ptx|asm [--fn NAME --args 'SIG']
      --gpu-arch ARCH        the NVIDIA arch of --stage ptx (default sm_90)
  tdl build FILE -o OUT      write a standalone native executable
  tdl export FILE --fn NAME -o M.tdlm
                             run FILE, then write its graph fn NAME (more with
                             more --fn), the values it reads and its compiled
                             code into one model file
      --quantize int8 --calibrate DATA   int8 matrix products (docs/quantization.md)
      --target aarch64-linux-gnu [--target-cpu CPU]   code for an ARM board
                             (--target x86_64-linux-gnu: for this machine, as shared objects)
  tdl runtime M.tdlm... -o libtdl_model.so
                             a minimal C API library for the models' target that
                             holds only the kernels they use (docs/edge.md)
  tdl inspect M.tdlm [--json]  the signatures and weights of a model file
  tdl serve M.tdlm           answer predictions over HTTP (TensorFlow Serving's
                             REST API): --port N (0: any free port, printed),
                             --name NAME, --max-batch B, --batch-timeout-us T,
                             --threads K, --host ADDR, --max-body-bytes N,
                             --max-response-values V, --request-timeout S
  tdl repl                   an interactive eager session
  tdl jupyter install [--user | --prefix P]
                             register TDL as a Jupyter kernel (default: system-wide,
                             /usr/local/share/jupyter; --user: ~/.local/share/jupyter)
  tdl jupyter kernel -f CONNECTION_FILE
                             the kernel itself (Jupyter starts it)
  tdl builtins [--json]      the builtin functions and their parameters
  tdl doc NAME               the reference entry of a builtin (sum), a standard
                             module (nn) or one of its fns (nn.softmax)
      --json                 every entry as JSON (docs/reference.md is made of it)
  tdl lsp                    the language server, over stdio
  tdl --version | tdl help

Global options:
  --diagnostics=text|json    diagnostics as text (default) or one JSON object per line

Exit status: 0 success, 1 script error, 2 usage error, 3 internal error.
)";

int mainImpl(int argc, char** argv) {
  setBuiltinSignatures(&vm::staticBuiltinSignature);  // Sema's keyword check of builtin calls
  setDocLookup(&docFor);                               // help("nn.softmax")
  installModelLoader();                                // load_model("m.tdlm")
  std::vector<std::string> args(argv + 1, argv + argc);
  GlobalOptions g;
  // Global options may stand anywhere before the script's own arguments.
  auto takeGlobal = [&](std::vector<std::string>& a) -> bool {
    for (size_t i = 0; i < a.size(); ++i) {
      if (a[i].rfind("--diagnostics", 0) == 0) {
        std::string v;
        if (a[i].size() > 13 && a[i][13] == '=') v = a[i].substr(14);
        else if (i + 1 < a.size()) { v = a[i + 1]; a.erase(a.begin() + i + 1); }
        if (v != "text" && v != "json") return false;
        g.diagnostics = v;
        a.erase(a.begin() + i);
        --i;
      }
      auto isScript = [](const std::string& s) { return s.size() > 4 && s.compare(s.size() - 4, 4, ".tdl") == 0; };
      // After the script of `tdl run` (or of `tdl FILE.tdl`) come the script's own arguments;
      // after the file of another command (build, check, export, ...), its options.
      if (i + 1 < a.size() && (a[0] == "run" || isScript(a[0])) && isScript(a[i])) break;
    }
    return true;
  };
  if (!takeGlobal(args)) return usage("--diagnostics must be 'text' or 'json'");
  if (args.empty()) {
    std::fputs(kHelp, stdout);
    return kExitUsage;
  }
  const std::string& cmd = args[0];
  if (cmd == "--version" || cmd == "version") {
    if (args.size() > 1) return usage(fmt::format("{} takes no arguments, got '{}'", cmd, args[1]));
    fmt::print("tdl {}\nBLAS: {}\n", TDL_VERSION, rt::blas_description());
    return kExitOk;
  }
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    std::fputs(kHelp, stdout);
    return kExitOk;
  }

  // `tdl run [options] FILE [ARGS...]` and `tdl FILE [ARGS...]`: options stop at FILE.
  if (cmd == "run" || (cmd.size() > 0 && cmd[0] != '-' && cmd.find('.') != std::string::npos)) {
    RunOptions ro;
    size_t i = cmd == "run" ? 1 : 0;
    for (; i < args.size(); ++i) {
      const std::string& a = args[i];
      if (a.empty() || a[0] != '-') break;
      if (a == "--np" || a.rfind("--np=", 0) == 0) {
        std::string v = a == "--np" ? (i + 1 < args.size() ? args[++i] : "") : a.substr(5);
        char* end = nullptr;
        long n = std::strtol(v.c_str(), &end, 10);
        if (v.empty() || *end || n < 1 || n > 4096) return usage("--np needs a number of processes (1 to 4096)");
        ro.np = static_cast<int>(n);
        continue;
      }
      if (a == "--help" || a == "-h") {  // the run section of `tdl help`
        std::string h = kHelp;
        size_t b = h.find("  tdl run "), e = h.find("  tdl check ");
        std::fputs(("Usage:\n" + h.substr(b, e - b)).c_str(), stdout);
        return kExitOk;
      }
      if (a == "--eager") ro.eager = true;
      else if (a == "--trace-report") ro.traceReport = true;
      else if (a == "--profile") ro.profile = true;
      else if (a == "--trace") ro.trace = true;
      else if (a == "--device" || a.rfind("--device=", 0) == 0) {
        std::string v = a == "--device" ? (i + 1 < args.size() ? args[++i] : "") : a.substr(9);
        if (v != "cpu" && v != "cuda" && v != "emu" && v != "auto")
          return usage("--device must be cpu, cuda, emu or auto");
        ro.device = v;
      } else if (a == "--gpu-arch" || a.rfind("--gpu-arch=", 0) == 0) {
        std::string v = a == "--gpu-arch" ? (i + 1 < args.size() ? args[++i] : "") : a.substr(11);
        if (!codegen::isKnownGpuArch(v))
          return usage(fmt::format("unknown --gpu-arch '{}' (one of {})", v, codegen::knownGpuArchs()));
        ro.gpuArch = v;
      } else if (a == "--") {
        ++i;
        break;
      } else {
        return usage(fmt::format("unknown option '{}' for 'run'", a));
      }
    }
    if (i >= args.size()) return usage("'run' needs a FILE");
    for (size_t k = cmd == "run" ? 1 : 0; k < i; ++k) {  // the options each process of --np gets
      if (args[k] == "--np") ++k;
      else if (args[k].rfind("--np=", 0) != 0 && args[k] != "--") ro.forwarded.push_back(args[k]);
    }
    ro.file = args[i];
    ro.scriptArgs.assign(args.begin() + static_cast<long>(i) + 1, args.end());
    ro.jsonDiagnostics = g.diagnostics == "json";
    return runScript(ro);
  }

  CLI::App app{"tdl"};
  app.set_help_flag();  // `tdl help` prints our own text
  std::string file, stage = "ast", out;
  EmitOptions eo;
  auto* check = app.add_subcommand("check", "parse and check only");
  check->add_option("FILE", file)->required();
  auto* emit = app.add_subcommand("emit", "print a stage of the compiler");
  emit->add_option("FILE", file)->required();
  emit->add_option("--stage", stage)->check(CLI::IsMember({"ast", "bytecode", "ir", "opt", "llvm", "ptx", "asm"}));
  emit->add_option("--fn", eo.fn);
  emit->add_option("--args", eo.args);
  std::string gpuArch = "sm_90";
  emit->add_option("--gpu-arch", gpuArch, "the NVIDIA arch of --stage ptx (default sm_90)");
  auto* build = app.add_subcommand("build", "write a native executable");
  BuildOptions bo;
  build->add_option("FILE", file)->required();
  build->add_option("-o", out)->required();
  build->add_option("-O", bo.optLevel, "optimization level 0..3")->check(CLI::Range(0, 3));
  build->add_option("--target", bo.target, "the machine to build for: aarch64-linux-gnu (cross), or this one (default)");
  build->add_option("--target-cpu", bo.targetCpu, "host (default), generic, or an LLVM CPU name (cross: cortex-a72, ...)");
  build->add_flag("--emit-obj", bo.emitObj, "write one relocatable object instead of an executable");
  build->add_flag("--emit-llvm", bo.emitLlvm, "write the LLVM IR of the compiled graph fns");
  build->add_flag("--lib", bo.lib, "write a shared library and a C header");
  build->add_option("--device", bo.device, "cpu (default), or cuda: also embed the graph fns' GPU kernels (PTX, and a cubin "
                                           "where ptxas is installed); the program runs them on a GPU when there is one")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  build->add_option("--gpu-arch", bo.gpuArch, "the NVIDIA arch of --device cuda (default sm_90)");
  auto* exportCmd = app.add_subcommand("export", "write graph fns and their weights into a model file");
  ExportOptions xo;
  exportCmd->add_option("FILE", file)->required();
  exportCmd->add_option("--fn", xo.fns, "a graph fn to export (repeatable)")->required();
  exportCmd->add_option("-o", out)->required();
  exportCmd->add_option("-O", xo.optLevel, "optimization level 0..3")->check(CLI::Range(0, 3));
  exportCmd->add_option("--args", xo.scriptArgs, "arguments for the script's args()");
  exportCmd->add_option("--quantize", xo.quantize, "int8: weights and activations of matrix products as int8")
      ->check(CLI::IsMember({"int8"}));
  exportCmd->add_option("--calibrate", xo.calibrate,
                        "with --quantize: the fn's inputs for measuring activation ranges (.npy, or .safetensors by input name)");
  exportCmd->add_option("--target", xo.target,
                        "the machine the model's code is for: aarch64-linux-gnu (cross), or x86_64-linux-gnu (this one): "
                        "shared objects a loader without LLVM maps; default: this machine, objects tdl links");
  exportCmd->add_option("--target-cpu", xo.targetCpu, "host (default), generic, or an LLVM CPU name (cross: cortex-a72, ...)");
  auto* runtimeCmd = app.add_subcommand("runtime", "a minimal libtdl_model.so holding only the kernels of given models");
  std::vector<std::string> runtimeModels;
  runtimeCmd->add_option("MODEL", runtimeModels, "model files (.tdlm) exported for one target")->required();
  runtimeCmd->add_option("-o", out, "the library to write (libtdl_model.so)")->required();
  auto* inspect = app.add_subcommand("inspect", "the signatures and weights of a model file");
  bool inspectJson = false;
  inspect->add_option("MODEL", file)->required();
  inspect->add_flag("--json", inspectJson, "as JSON");
  auto* serve = app.add_subcommand("serve", "serve a model file over HTTP");
  ServeOptions so;
  serve->add_option("MODEL", so.model)->required();
  auto* serveName = serve->add_option("--name", so.name, "the model's name in URLs (default: the file's stem)");
  serve->add_option("--host", so.host, "the address to listen on (default 127.0.0.1)");
  serve->add_option("--port", so.port, "the port (0: any free port)")->check(CLI::Range(0, 65535));
  serve->add_option("--max-batch", so.maxBatch, "the most rows one batched call takes")->check(CLI::Range(1, 1 << 16));
  serve->add_option("--batch-timeout-us", so.batchTimeoutUs, "how long a batch waits for more rows")
      ->check(CLI::Range(0, 10'000'000));
  serve->add_option("--threads", so.threads, "network threads (default: cores, at most 4)")->check(CLI::Range(0, 256));
  serve->add_option("--max-body-bytes", so.maxBodyBytes, "the largest request body (default 16 MiB)")
      ->check(CLI::Range(size_t{1}, size_t{1} << 34));
  serve->add_option("--max-response-values", so.maxResponseValues,
                    "the most numbers one answer holds (default 33554432)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  serve->add_option("--request-timeout", so.requestTimeoutS, "seconds a request may take to arrive")
      ->check(CLI::Range(1, 3600));
  auto* repl = app.add_subcommand("repl", "interactive eager session");
  auto* jupyter = app.add_subcommand("jupyter", "the Jupyter kernel");
  jupyter->require_subcommand(1, 1);
  auto* jkernel = jupyter->add_subcommand("kernel", "run the kernel (Jupyter starts it)");
  std::string connectionFile;
  jkernel->add_option("-f,--connection-file", connectionFile, "the connection file Jupyter gives")->required();
  auto* jinstall = jupyter->add_subcommand("install", "install the kernelspec");
  JupyterInstallOptions jo;
  auto* juser = jinstall->add_flag("--user", jo.user, "in the user's Jupyter data directory");
  jinstall->add_option("--prefix", jo.prefix, "in PREFIX/share/jupyter")->excludes(juser);
  jinstall->add_option("--name", jo.name, "the kernelspec's name (default tdl)");
  auto* builtins = app.add_subcommand("builtins", "the builtin functions and their parameters");
  bool builtinsJson = false;
  builtins->add_flag("--json", builtinsJson, "as JSON");
  auto* doc = app.add_subcommand("doc", "the reference entry of a builtin, standard module or fn");
  std::string docName;
  bool docJson = false;
  doc->add_option("NAME", docName);
  doc->add_flag("--json", docJson, "every entry as JSON");
  auto* lsp = app.add_subcommand("lsp", "language server over stdio");
  app.require_subcommand(1, 1);
  // `tdl CMD ... --help`: that command's options (CLI11's text; `tdl help` has them all).
  if (CLI::App* sc = [&]() -> CLI::App* {
        for (CLI::App* c : app.get_subcommands({}))
          if (c->get_name() == cmd) return c;
        return nullptr;
      }()) {
    for (size_t i = 1; i < args.size() && args[i] != "--"; ++i)
      if (args[i] == "--help" || args[i] == "-h") {
        CLI::App* shown = sc;
        for (CLI::App* c : sc->get_subcommands({}))
          if (args.size() > 1 && c->get_name() == args[1]) shown = c;
        std::fputs(shown->help(shown == sc ? "tdl" : "tdl " + sc->get_name()).c_str(), stdout);
        return kExitOk;
      }
  } else {
    return usage(cmd[0] == '-' ? fmt::format("unknown option '{}'", cmd)
                               : fmt::format("unknown command '{}' (a script's name ends in .tdl: tdl run FILE)", cmd));
  }
  try {
    std::vector<std::string> rev(args.rbegin(), args.rend());
    app.parse(rev);
  } catch (const CLI::ParseError& e) {
    return usage(e.what());
  }
  if (check->parsed()) return cmdCheck(file, g);
  if (emit->parsed()) {
    if (!codegen::isKnownGpuArch(gpuArch))
      return usage(fmt::format("unknown --gpu-arch '{}' (one of {})", gpuArch, codegen::knownGpuArchs()));
    if (stage == "ptx" && gpuArch != "sm_90") stage += ":" + gpuArch;  // vm::emitGraphStage reads it there
    return cmdEmit(file, stage, g, eo);
  }
  if (build->parsed()) {
    bo.file = file;
    bo.out = out;
    if (!codegen::isKnownGpuArch(bo.gpuArch))
      return usage(fmt::format("unknown --gpu-arch '{}' (one of {})", bo.gpuArch, codegen::knownGpuArchs()));
    bo.jsonDiagnostics = g.diagnostics == "json";
    return buildExecutable(bo);
  }
  if (exportCmd->parsed()) {
    xo.file = file;
    xo.out = out;
    return exportModel(xo);
  }
  if (runtimeCmd->parsed()) return buildRuntime(runtimeModels, out);
  if (inspect->parsed()) return inspectModel(file, inspectJson);
  if (serve->parsed()) {
    if (serveName->count() > 0 && so.name.empty()) return usage("--name needs a name (it stands in the model's URLs)");
    return serveModel(so);
  }
  if (repl->parsed()) return runRepl();
  if (jkernel->parsed()) return runJupyterKernel(connectionFile);
  if (jinstall->parsed()) {
    static const std::regex okName("[A-Za-z0-9._-]+");
    if (!std::regex_match(jo.name, okName)) return usage("a kernelspec --name has letters, digits, '.', '_' and '-' only");
    return installJupyterKernel(jo);
  }
  if (builtins->parsed()) {
    fmt::print("{}", vm::builtinSignatures(builtinsJson));
    return 0;
  }
  if (doc->parsed()) {
    if (docJson) {
      fmt::print("{}", docJsonText());
      return 0;
    }
    if (docName.empty()) return usage("tdl doc needs a NAME (a builtin such as sum, a module such as nn, or nn.softmax)");
    std::string out, err;
    if (!docFor(docName, out, err)) {
      fmt::print(stderr, "tdl: error: {}\n", err);
      return 1;
    }
    fmt::print("{}", out);
    return 0;
  }
  if (lsp->parsed()) return lsp::runLanguageServer(stdin, stdout);
  return usage("unknown command");
}

}  // namespace
}  // namespace tdl

int main(int argc, char** argv) {
  return tdl::runMainGuarded([&] { return tdl::mainImpl(argc, argv); });
}
