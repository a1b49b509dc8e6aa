// The commands of the `tdl` tool beyond argument handling: run (the eager
// VM), emit --stage bytecode, and the REPL. Commands whose engines have not
// landed yet say so plainly (exit status 2), after checking the script, so
// static errors are still reported.
#include "tools/Commands.h"
#include "runtime/Interrupt.h"

#include "runtime/Dist.h"
#include "runtime/Profile.h"

#include <fmt/format.h>
#include <signal.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <langinfo.h>
#include <clocale>
#include <poll.h>
#include <sys/ioctl.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "codegen/Device.h"
#include "runtime/cuda/CudaDriver.h"
#include "graph/GraphCall.h"
#include "frontend/Doc.h"
#include "vm/Vm.h"
#include <chrono>

#ifdef TDL_HAVE_LIBEDIT
#include <editline/readline.h>
#endif

namespace tdl {

namespace {
int notYet(const std::string& what, const std::string& issue) {
  fmt::print(stderr, "tdl: error: {} is not available yet ({})\n", what, issue);
  return 2;
}
}  // namespace

// --device (SPEC §10, docs/gpu.md): `cuda` needs the CUDA driver (loaded with dlopen) and a
// device, and says why not and exits 1 otherwise; `auto` runs on the GPU when there is one
// and on the CPU otherwise; `emu` runs graph fns as on a GPU, on the emulated device.
int selectRunDevice(const RunOptions& opts) {
  if (opts.device == "cpu") return 0;
  if (opts.device == "emu") {
    codegen::setActiveDevice(codegen::makeEmuDevice(), opts.gpuArch);
    return 0;
  }
  std::string why = codegen::selectDevice("cuda", opts.gpuArch);
  if (why.empty() || opts.device == "auto") return 0;
  fmt::print(stderr, "tdl: error: --device {}: {}\n", opts.device, why);
  return 1;
}

// Whether another process of this user may read this one's memory (process_vm_readv, Linux
// cross-memory attach): what OpenMPI's shared-memory transport uses for a single copy of a
// large message. Containers (seccomp without CAP_SYS_PTRACE) and Yama's ptrace scope
// forbid it, and OpenMPI then fails; a child reading its parent meets the same checks as
// two ranks reading each other. The child makes syscalls only (safe after fork).
static bool crossMemoryAttachWorks() {
  static volatile uint64_t probe = 0x54444c434d410001ull;
  pid_t parent = getpid();
  pid_t child = fork();
  if (child < 0) return false;
  if (child == 0) {
    uint64_t got = 0;
    struct iovec local {&got, sizeof got}, remote{const_cast<uint64_t*>(&probe), sizeof probe};
    ssize_t n = process_vm_readv(parent, &local, 1, &remote, 1, 0);
    _exit(n == static_cast<ssize_t>(sizeof got) && got == probe ? 0 : 1);
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// `tdl run --np N`: this tool again as N processes under mpirun (Debian's OpenMPI), with
// the settings a container or root needs (docs/distributed.md).
int runWithMpirun(const RunOptions& opts) {
  std::string mpirun;
  if (const char* path = std::getenv("PATH")) {
    std::string p = path;
    size_t start = 0;
    while (start <= p.size()) {
      size_t colon = p.find(':', start);
      std::string dir = p.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
      std::string cand = (dir.empty() ? "." : dir) + "/mpirun";
      if (access(cand.c_str(), X_OK) == 0) {
        mpirun = cand;
        break;
      }
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
  }
  if (mpirun.empty()) {
    fmt::print(stderr, "tdl: error: --np needs mpirun, which is not on PATH (Debian: openmpi-bin; "
                       "scripts/install-deps.sh installs it)\n");
    return 1;
  }
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    fmt::print(stderr, "tdl: error: cannot find the tdl executable for mpirun\n");
    return 1;
  }
  self[n] = '\0';
  // OpenMPI refuses root without these; in containers its shared-memory single copy fails.
  if (geteuid() == 0) {
    setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
    setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
  }
  // Single copy where the kernel allows it (1 MiB allreduce 0.25 -> 0.15 ms on 2 ranks),
  // else none (it would fail).
  if (!std::getenv("OMPI_MCA_btl_vader_single_copy_mechanism") && !crossMemoryAttachWorks())
    setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 0);
  std::vector<std::string> argv = {mpirun, "-np", std::to_string(opts.np), "--oversubscribe", "--bind-to", "none",
                                   self, "run"};
  for (auto& f : opts.forwarded) argv.push_back(f);
  argv.push_back("--");
  argv.push_back(opts.file);
  for (auto& a : opts.scriptArgs) argv.push_back(a);
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  execv(mpirun.c_str(), cargv.data());
  fmt::print(stderr, "tdl: error: cannot run {}: {}\n", mpirun, std::strerror(errno));
  return 1;
}

int runScript(const RunOptions& opts) {
  if (opts.np > 0) return runWithMpirun(opts);
  Compilation c;
  c.diags.setJson(opts.jsonDiagnostics);
  c.diags.setColor(!opts.jsonDiagnostics && isatty(2) && std::getenv("NO_COLOR") == nullptr);
  if (!c.load(opts.file, SemaOptions{opts.eager})) return 1;
  if (int rc = selectRunDevice(opts)) return rc;
  vm::VmOptions vo;
  vo.eager = opts.eager;
  vo.trace = opts.trace;
  vm::setTraceReport(opts.traceReport);
  vo.scriptArgs = opts.scriptArgs;
  if (opts.profile) rt::prof::enable();
  int rc = vm::runProgram(c, vo);
  if (opts.traceReport && !opts.profile) {  // after the graph fns' report (--profile prints it too)
    std::string dev = codegen::deviceReport();
    std::fwrite(dev.data(), 1, dev.size(), stderr);
  }
  // A rank that failed stops the others (they would wait for it in a collective).
  if (rc != 0) rt::dist::abort_all(rc);
  if (opts.profile) {
    std::fflush(stdout);
    std::string r = rt::prof::report() + codegen::deviceReport();
    std::fwrite(r.data(), 1, r.size(), stderr);
  }
  return rc;
}

int emitStage(Compilation& c, const std::string& stage, const EmitOptions& eo) {
  if (stage == "ir" || stage == "opt" || stage == "llvm" || stage == "asm" || stage.rfind("ptx", 0) == 0)
    return vm::emitGraphStage(c, stage, eo.fn, eo.args);
  if (stage == "bytecode") {
    std::string text = vm::bytecodeText(c);
    std::fwrite(text.data(), 1, text.size(), stdout);
    return 0;
  }
  return notYet(fmt::format("--stage {}", stage), "the graph compiler lands with issue 5");
}

namespace {

// The REPL's thread: Ctrl-C must interrupt its read at the prompt, wherever the kernel
// delivers SIGINT (any thread not blocking it: the runtime's pool threads too).
pthread_t replThread;

extern "C" void replInterrupt(int) {
  rt::request_interrupt();
  if (!pthread_equal(pthread_self(), replThread)) pthread_kill(replThread, SIGINT);
}

// SIGINT's handler, with reads restarted (while an input runs: Ctrl-C stops it through the
// interrupt flag) or not (at the prompt: the read returns, and the line is dropped).
void onInterrupt(bool restart) {
  struct sigaction sa {};
  sa.sa_handler = replInterrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = restart ? SA_RESTART : 0;
  sigaction(SIGINT, &sa, nullptr);
}

#ifdef TDL_HAVE_LIBEDIT
// libedit's reads at the prompt (rl_getc_function): a character, or EOF at the end of input
// or when Ctrl-C came, so that readline returns and its line is dropped. libedit's own
// signal handling stays off (rl_catch_signals = 0): it left the terminal in cooked mode and
// the line in place. libedit takes both when it is set up, so setUpLineEditing runs before
// anything else of it (the history calls set it up too).
// A blocking read could miss a Ctrl-C: one handled just before the read started (as the
// prompt was drawn), or one whose byte woke poll and was then dropped by the terminal (ISIG
// flushes the input) before the read. So it waits in poll with a short timeout, looks at
// the flag each time, and reads without blocking, from a second open of the terminal (its
// own O_NONBLOCK: stdin's flags, shared with the shell, stay as they are); without one,
// FIONREAD says whether a byte is there.
int promptNonBlockingFd() {
  static int fd = [] {
    const char* name = ttyname(0);
    return name ? open(name, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC) : -1;
  }();
  return fd;
}

int promptByte(FILE* f) {
  int in = fileno(f);
  int nb = in == 0 ? promptNonBlockingFd() : -1;
  for (;;) {
    if (rt::interrupt_pending()) return EOF;
    pollfd p{in, POLLIN, 0};
    int r = poll(&p, 1, 100);
    if (r == 0 || (r < 0 && errno == EINTR)) continue;
    if (r < 0) return EOF;
    if (nb < 0 && !(p.revents & (POLLHUP | POLLERR))) {
      int avail = 0;
      if (ioctl(in, FIONREAD, &avail) == 0 && avail == 0) continue;
    }
    unsigned char c;
    ssize_t n = read(nb >= 0 ? nb : in, &c, 1);
    if (n == 1) return c;
    if (n == 0) {
      if (p.revents & POLLHUP) return EOF;  // the terminal went away
      continue;                             // no byte without blocking (VMIN 0)
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
    return EOF;
  }
}

// libedit's readline takes what rl_getc_function returns as one wide character (its own
// reads decode the locale's multibyte characters; this one must too): the terminal's
// UTF-8 is decoded here, a malformed sequence is U+FFFD.
int promptGetc(FILE* f) {
  int c = promptByte(f);
  if (c < 0x80) return c;  // ASCII, or EOF
  int extra = c >= 0xC2 && c <= 0xDF ? 1 : c >= 0xE0 && c <= 0xEF ? 2 : c >= 0xF0 && c <= 0xF4 ? 3 : 0;
  if (extra == 0) return 0xFFFD;
  int cp = c & (0x3F >> extra);
  for (int k = 0; k < extra; ++k) {
    int d = promptByte(f);
    if (d == EOF) return EOF;
    if ((d & 0xC0) != 0x80) return 0xFFFD;
    cp = cp << 6 | (d & 0x3F);
  }
  bool bad = (extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
             (cp >= 0xD800 && cp <= 0xDFFF);
  return bad ? 0xFFFD : cp;
}

// Before libedit is used: its reads and signals as above, and a UTF-8 character type (the
// language's text is UTF-8; in the C locale libedit drops every non-ASCII character typed).
void setUpLineEditing() {
  rl_catch_signals = 0;
  rl_getc_function = promptGetc;
  const char* loc = setlocale(LC_CTYPE, "");
  if (!loc || std::strcmp(nl_langinfo(CODESET), "UTF-8") != 0) setlocale(LC_CTYPE, "C.UTF-8");
}
#endif

// Reads one line; false at the end of input. Line editing and history when
// stdin is a terminal, plain reads (no prompt) when it is a pipe. Ctrl-C at the prompt
// drops what was typed (the line, or an unfinished input): `interrupted` says so, and the
// line is empty (Python's KeyboardInterrupt at its prompt).
bool readLine(bool interactive, const char* prompt, std::string& line, bool& interrupted) {
  interrupted = false;
#ifdef TDL_HAVE_LIBEDIT
  if (interactive) {
    rt::clear_interrupt();
    onInterrupt(false);
    char* s = readline(prompt);
    onInterrupt(true);
    if (rt::interrupt_pending()) {
      rt::clear_interrupt();
      std::free(s);
      line.clear();
      interrupted = true;
      std::fputs("^C\n", stdout);
      std::fflush(stdout);
      return true;
    }
    if (!s) return false;
    line = s;
    if (!line.empty()) add_history(s);
    std::free(s);
    return true;
  }
#else
  if (interactive) {
    std::fputs(prompt, stdout);
    std::fflush(stdout);
  }
#endif
  return static_cast<bool>(std::getline(std::cin, line));
}

// The REPL's history file: $TDL_HISTORY, else ~/.tdl_history ("" without a home).
std::string historyPath() {
  if (const char* p = std::getenv("TDL_HISTORY")) return p;
  if (const char* h = std::getenv("HOME")) return std::string(h) + "/.tdl_history";
  return "";
}

const char* kReplHelp = R"(Commands (a line that starts with ':'):
  :help             this list
  :help NAME        the reference entry of a builtin (sum), a standard module (nn) or
                    one of its fns (nn.softmax); help(f) in code does the same for a value
  :type EXPR        the type of EXPR's value (f32[2, 3], list, ...), not the value
  :time EXPR        runs EXPR (or a statement) and prints how long it took
  :quit             ends the session (as exit() and Ctrl-D do)
)";

}  // namespace

// A ':' command of the REPL; false when the session should end.
bool replCommand(vm::ReplSession& session, const std::string& line, bool& keepGoing) {
  std::string cmd = line.substr(1), rest;
  size_t sp = cmd.find_first_of(" \t");
  if (sp != std::string::npos) {
    rest = cmd.substr(cmd.find_first_not_of(" \t", sp) == std::string::npos ? cmd.size() : cmd.find_first_not_of(" \t", sp));
    cmd = cmd.substr(0, sp);
  }
  keepGoing = true;
  if (cmd == "help" || cmd == "h" || cmd == "?") {
    if (rest.empty()) {
      std::fputs(kReplHelp, stdout);
      return true;
    }
    std::string out, err;
    if (docFor(rest, out, err)) std::fputs(out.c_str(), stdout);
    else fmt::print(stderr, "error: {}\n", err);
    return true;
  }
  if (cmd == "type" || cmd == "t") {
    if (rest.empty()) {
      fmt::print(stderr, "error: :type needs an expression (:type x @ w)\n");
      return true;
    }
    std::string type;
    keepGoing = session.evalType(rest, type);
    if (!type.empty()) fmt::print("{}\n", type);
    return true;
  }
  if (cmd == "time") {
    if (rest.empty()) {
      fmt::print(stderr, "error: :time needs an expression or a statement (:time train(10))\n");
      return true;
    }
    auto t0 = std::chrono::steady_clock::now();
    keepGoing = session.eval(rest);
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::fflush(stdout);
    fmt::print("time: {:.3f} ms\n", ms);
    return true;
  }
  if (cmd == "quit" || cmd == "q" || cmd == "exit") {
    keepGoing = false;
    return true;
  }
  fmt::print(stderr, "error: unknown command ':{}' (:help lists them)\n", cmd);
  return true;
}

int runRepl() {
  bool interactive = isatty(0) != 0;
  // Ctrl-C stops the running input with "interrupted" (runtime/Interrupt.h) and the session
  // goes on, as Python's KeyboardInterrupt; at the prompt it drops what was typed.
  replThread = pthread_self();
  if (interactive) onInterrupt(true);
  if (interactive) fmt::print("tdl {} — an eager session; :help lists commands; exit() or Ctrl-D ends it\n", TDL_VERSION);
#ifdef TDL_HAVE_LIBEDIT
  if (interactive) setUpLineEditing();
  std::string history = interactive ? historyPath() : "";
  if (!history.empty()) {
    using_history();
    stifle_history(1000);
    read_history(history.c_str());
  }
#endif
  vm::ReplSession session(vm::VmOptions{});
  std::string input, line;
  bool interrupted = false;
  while (readLine(interactive, input.empty() ? ">>> " : "... ", line, interrupted)) {
    if (interrupted) {
      input.clear();
      continue;
    }
#ifdef TDL_HAVE_LIBEDIT
    if (!history.empty() && !line.empty()) write_history(history.c_str());
#endif
    if (input.empty() && !line.empty() && line[0] == ':') {
      // A command's expression may go on over lines while a bracket is open (:type (1,).
      std::string command = line;
      bool cut = false;
      while (vm::ReplSession::needsMore(command)) {
        if (!readLine(interactive, "... ", line, interrupted) || interrupted) {
          cut = true;
          break;
        }
        command += "\n" + line;
      }
      if (cut && interrupted) continue;  // Ctrl-C drops it
      bool keepGoing = true;
      replCommand(session, command, keepGoing);
      std::fflush(stdout);
      if (!keepGoing) return session.exitCode();
      continue;
    }
    input += input.empty() ? line : "\n" + line;
    if (vm::ReplSession::needsMore(input)) continue;
    bool blank = input.find_first_not_of(" \t\r\n") == std::string::npos;
    std::string text = std::move(input);
    input.clear();
    if (blank) continue;
    rt::clear_interrupt();
    if (!session.eval(text)) return session.exitCode();
  }
  if (!input.empty() && !session.eval(input)) return session.exitCode();
  if (interactive) std::fputs("\n", stdout);
  return 0;
}

int runLanguageServer() { return notYet("'tdl lsp'", "it lands with issue 10"); }

}  // namespace tdl
