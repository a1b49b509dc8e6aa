#include "runtime/Dist.h"

#include <dlfcn.h>
#include <malloc.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>

#include "runtime/Create.h"
#include "runtime/Elementwise.h"
#include "runtime/Error.h"
#include "runtime/ShapeOps.h"

#ifndef TDL_MPI_LIB_PATH
#define TDL_MPI_LIB_PATH ""
#endif

namespace tdl::rt::dist {

namespace {

struct Mpi {
  int (*init)(int*, int*, char*, int) = nullptr;
  void (*finalize)() = nullptr;
  int (*allreduce)(const void*, void*, int64_t, int, int, double, char*, int) = nullptr;
  int (*bcast)(void*, int64_t, int, double, char*, int) = nullptr;
  int (*gatherCounts)(int64_t, int64_t*, double, char*, int) = nullptr;
  int (*allgatherv)(const void*, int64_t, void*, const int64_t*, int, double, char*, int) = nullptr;
  int (*barrier)(double, char*, int) = nullptr;
  void (*abort)(int) = nullptr;
};

struct State {
  std::once_flag once;
  bool launched = false;  // started by mpirun (its environment)
  bool loaded = false;    // libtdl_mpi.so loaded and MPI initialized
  std::string loadError;
  Mpi mpi;
  int rank = 0, size = 1;
  uint64_t seq = 0;
  double timeout = 120;
  bool check = true;
};

State& state() {
  static State s;
  return s;
}

const char* envRank() {
  for (const char* v : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"})
    if (const char* r = std::getenv(v)) return r;
  return nullptr;
}
const char* envSize() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
    if (const char* r = std::getenv(v)) return r;
  return nullptr;
}

// Started by mpirun: one malloc arena for the process, set before any thread allocates. MPI's
// collectives malloc temporaries as large as the message on the calling thread, and the VM
// runs on a thread of its own (runWithLargeStack), whose arena unmaps a heap as soon as it
// is empty: every large collective faulted its temporaries in again (64 MiB allreduce:
// 270 ms, 72 ms with one arena; bench/DIST.md). libtdl_mpi's mallopt calls then keep the
// main heap's memory.
const bool g_oneArena = [] {
  const char* n = envSize();
  if (n && std::atoi(n) > 1) mallopt(M_ARENA_MAX, 1);
  return true;
}();

// libtdl_mpi.so: $TDL_MPI_LIB, beside the running executable, where the build put it, or
// the loader's search path.
void* openShim(std::string& tried) {
  std::vector<std::string> paths;
  if (const char* p = std::getenv("TDL_MPI_LIB")) paths.emplace_back(p);
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    std::string dir(exe, static_cast<size_t>(n));
    dir = dir.substr(0, dir.rfind('/'));
    paths.push_back(dir + "/libtdl_mpi.so");
  }
  if (*TDL_MPI_LIB_PATH) paths.emplace_back(TDL_MPI_LIB_PATH);
  paths.emplace_back("libtdl_mpi.so");
  for (auto& p : paths) {
    if (void* h = dlopen(p.c_str(), RTLD_NOW | RTLD_GLOBAL)) return h;
    tried += (tried.empty() ? "" : "; ") + p + ": " + dlerror();
  }
  return nullptr;
}

void start() {
  State& s = state();
  std::call_once(s.once, [&] {
    if (const char* t = std::getenv("TDL_DIST_TIMEOUT")) {
      double v = std::atof(t);
      if (v > 0) s.timeout = v;
    }
    if (const char* c = std::getenv("TDL_DIST_CHECK")) s.check = std::string(c) != "0";
    const char* sz = envSize();
    if (!sz) return;
    s.launched = true;
    if (const char* r = envRank()) s.rank = std::atoi(r);
    s.size = std::max(1, std::atoi(sz));
    std::string tried;
    void* h = openShim(tried);
    if (!h) {
      s.loadError = "this tdl cannot load MPI (libtdl_mpi.so: " + tried +
                    "); it is built where libopenmpi-dev is installed (scripts/install-deps.sh)";
      return;
    }
    auto sym = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(h, name));
      return fn != nullptr;
    };
    Mpi& m = s.mpi;
    if (!sym(m.init, "tdl_mpi_init") || !sym(m.finalize, "tdl_mpi_finalize") || !sym(m.allreduce, "tdl_mpi_allreduce") ||
        !sym(m.bcast, "tdl_mpi_bcast") || !sym(m.gatherCounts, "tdl_mpi_allgather_counts") ||
        !sym(m.allgatherv, "tdl_mpi_allgatherv") || !sym(m.barrier, "tdl_mpi_barrier") || !sym(m.abort, "tdl_mpi_abort")) {
      s.loadError = "libtdl_mpi.so lacks the tdl_mpi_* functions";
      return;
    }
    char err[512] = "";
    int rank = 0, size = 1;
    if (m.init(&rank, &size, err, sizeof err) != 0) {
      s.loadError = err;
      return;
    }
    s.rank = rank;
    s.size = size;
    s.loaded = true;
    std::atexit(finalize);
  });
}

// Throws when collectives cannot run here (launched by mpirun, but no MPI).
void need(const char* what) {
  start();
  State& s = state();
  if (s.launched && !s.loaded && s.size > 1) throw Error(fmt::format("dist.{}: {}", what, s.loadError));
}

[[noreturn]] void fail(const char* err) { throw Error(err); }

// Every rank calls the same collective: an allgather of (hash, description) records.
constexpr size_t kRecord = 512;
void agree(const std::string& kind, const std::string& what, const std::string& where) {
  State& s = state();
  ++s.seq;
  if (!s.loaded) return;
  if (!s.check) {
    // No check: still a point every rank must reach within the deadline, so that the
    // blocking data movement after it never waits for a rank that is gone.
    char err[512] = "";
    if (s.mpi.barrier(s.timeout, err, sizeof err) != 0) throw Error(fmt::format("dist.{}: {}", kind, err));
    return;
  }
  std::string desc = fmt::format("{} (collective #{})", what, s.seq);
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : desc) h = (h ^ c) * 1099511628211ull;
  std::string rec(kRecord, '\0');
  std::memcpy(rec.data(), &h, 8);
  std::string text = fmt::format("at {}: {}", where, desc);
  std::memcpy(rec.data() + 8, text.data(), std::min(text.size(), kRecord - 9));
  std::vector<int64_t> counts(static_cast<size_t>(s.size), static_cast<int64_t>(kRecord));
  std::string all(kRecord * static_cast<size_t>(s.size), '\0');
  char err[512] = "";
  if (s.mpi.allgatherv(rec.data(), kRecord, all.data(), counts.data(), s.size, s.timeout, err, sizeof err) != 0)
    throw Error(fmt::format("dist.{}: {}", kind, err));
  bool same = true;
  for (int r = 1; r < s.size; ++r)
    if (std::memcmp(all.data(), all.data() + static_cast<size_t>(r) * kRecord, 8) != 0) same = false;
  if (same) return;
  std::string msg = fmt::format("dist.{}: the ranks called different collectives:", kind);
  for (int r = 0; r < s.size; ++r) msg += fmt::format("\n  rank {} {}", r, all.c_str() + static_cast<size_t>(r) * kRecord + 8);
  msg += "\n(every rank must call the same collectives in the same order, with the same dtypes and shapes; "
         "TDL_DIST_CHECK=0 turns this check off)";
  throw Error(msg);
}

std::string describe(const std::vector<Tensor>& xs, bool skipFirstDim) {
  std::string s;
  for (size_t i = 0; i < xs.size() && i < 8; ++i) {
    Shape shape = xs[i].shape();
    std::string dims;
    for (size_t d = 0; d < shape.size(); ++d)
      dims += (d ? ", " : "") + (d == 0 && skipFirstDim ? std::string("*") : std::to_string(shape[d]));
    s += fmt::format("{}{}[{}]", i ? ", " : "", dtype_name(xs[i].dtype()), dims);
  }
  if (xs.size() > 8) s += fmt::format(", ... ({} tensors)", xs.size());
  return s;
}

int opCode(ReduceOp op) {
  switch (op) {
    case ReduceOp::Max: return 1;
    case ReduceOp::Min: return 2;
    default: return 0;  // sum (mean divides after)
  }
}

}  // namespace

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return "sum";
    case ReduceOp::Mean: return "mean";
    case ReduceOp::Max: return "max";
    case ReduceOp::Min: return "min";
  }
  return "?";
}

bool parse_reduce_op(const std::string& name, ReduceOp& op) {
  for (ReduceOp o : {ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min})
    if (name == reduce_op_name(o)) {
      op = o;
      return true;
    }
  return false;
}

bool prints_here(bool allRanks) {
  if (allRanks) return true;
  // Without MPI loaded yet: mpirun's environment says the rank (no MPI start for a print).
  const char* r = envRank();
  return !r || std::atoi(r) == 0;
}

int rank() {
  start();
  return state().rank;
}

int size() {
  start();
  return state().size;
}

bool distributed() {
  start();
  return state().loaded && state().size > 1;
}

void allreduce(std::vector<Tensor>& xs, ReduceOp op, const std::string& where) {
  need("allreduce");
  State& s = state();
  if (op == ReduceOp::Mean)
    for (const Tensor& x : xs)
      if (!is_float(x.dtype()))
        throw Error(fmt::format("dist.allreduce: op \"mean\" needs float tensors, got {} (use \"sum\")", dtype_name(x.dtype())));
  agree("allreduce", fmt::format("allreduce({}) of {}", reduce_op_name(op), describe(xs, false)), where);
  if (!distributed()) return;
  // Buckets: consecutive tensors of one dtype packed up to 64 MiB (a larger tensor alone).
  constexpr size_t kBucket = size_t{64} << 20;
  size_t i = 0;
  char err[512] = "";
  while (i < xs.size()) {
    DType dt = xs[i].dtype();
    size_t j = i, bytes = 0;
    while (j < xs.size() && xs[j].dtype() == dt && (j == i || bytes + xs[j].nbytes() <= kBucket)) bytes += xs[j++].nbytes();
    if (j == i + 1) {  // one tensor: from its buffer into a new one (no copy first)
      Tensor out = Tensor::empty(dt, xs[i].shape());
      if (out.numel() > 0 && s.mpi.allreduce(xs[i].raw(), out.mutable_raw(), out.numel(), static_cast<int>(dt), opCode(op),
                                             s.timeout, err, sizeof err) != 0)
        fail(err);
      xs[i] = std::move(out);
    } else {
      std::unique_ptr<char[]> buf(new char[bytes]);
      size_t at = 0;
      for (size_t k = i; k < j; ++k) {
        std::memcpy(buf.get() + at, xs[k].raw(), xs[k].nbytes());
        at += xs[k].nbytes();
      }
      int64_t count = static_cast<int64_t>(bytes / itemsize(dt));
      if (count > 0 &&
          s.mpi.allreduce(nullptr, buf.get(), count, static_cast<int>(dt), opCode(op), s.timeout, err, sizeof err) != 0)
        fail(err);
      at = 0;
      for (size_t k = i; k < j; ++k) {
        Tensor t = Tensor::empty(dt, xs[k].shape());
        std::memcpy(t.mutable_raw(), buf.get() + at, t.nbytes());
        at += t.nbytes();
        xs[k] = std::move(t);
      }
    }
    i = j;
  }
  if (op == ReduceOp::Mean)
    for (Tensor& x : xs) {
      x.ensure_unique();
      double n = static_cast<double>(s.size);
      if (x.dtype() == DType::F32)
        for (int64_t k = 0; k < x.numel(); ++k) x.mutable_data<float>()[k] = static_cast<float>(x.data<float>()[k] / n);
      else
        for (int64_t k = 0; k < x.numel(); ++k) x.mutable_data<double>()[k] /= n;
    }
}

void broadcast(std::vector<Tensor>& xs, int root, const std::string& where) {
  need("broadcast");
  State& s = state();
  if (root < 0 || root >= s.size) throw Error(fmt::format("dist.broadcast: root {} is not a rank (0..{})", root, s.size - 1));
  agree("broadcast", fmt::format("broadcast(root={}) of {}", root, describe(xs, false)), where);
  if (!distributed()) return;
  char err[512] = "";
  for (Tensor& x : xs) {
    x.ensure_unique();
    if (s.mpi.bcast(x.mutable_raw(), static_cast<int64_t>(x.nbytes()), root, s.timeout, err, sizeof err) != 0) fail(err);
  }
}

Tensor allgather(const Tensor& x, const std::string& where) {
  need("allgather");
  State& s = state();
  if (x.rank() == 0) throw Error("dist.allgather: needs a tensor with a first axis, got a scalar (gather [x])");
  agree("allgather", fmt::format("allgather of {}", describe({x}, true)), where);
  if (!distributed()) return x;
  char err[512] = "";
  std::vector<int64_t> counts(static_cast<size_t>(s.size));
  if (s.mpi.gatherCounts(static_cast<int64_t>(x.nbytes()), counts.data(), s.timeout, err, sizeof err) != 0) fail(err);
  int64_t rowBytes = x.dim(0) > 0 ? static_cast<int64_t>(x.nbytes()) / x.dim(0) : 0;
  int64_t rows = 0, total = 0;
  for (int64_t c : counts) {
    total += c;
    if (rowBytes > 0) rows += c / rowBytes;
  }
  Shape shape = x.shape();
  if (rowBytes == 0) {
    // Rows of zero bytes (a zero-size inner dim): the row counts travel as their own gather.
    std::vector<int64_t> n(static_cast<size_t>(s.size));
    if (s.mpi.gatherCounts(x.dim(0), n.data(), s.timeout, err, sizeof err) != 0) fail(err);
    rows = 0;
    for (int64_t k : n) rows += k;
  }
  shape[0] = rows;
  Tensor out = Tensor::empty(x.dtype(), shape);
  if (total > 0 &&
      s.mpi.allgatherv(x.raw(), static_cast<int64_t>(x.nbytes()), out.mutable_raw(), counts.data(), s.size, s.timeout, err,
                       sizeof err) != 0)
    fail(err);
  return out;
}

void allreduce_extreme_grad(std::vector<Tensor>& gs, const std::vector<Tensor>& xs, const std::vector<Tensor>& ys,
                            const std::string& where) {
  allreduce(gs, ReduceOp::Sum, where);
  // Per element, shared evenly among the ranks whose input is the extreme (a NaN result: the
  // ranks holding NaN), as a max/min reduction's gradient is (runtime/Adjoint.h): this rank
  // takes g / (the number of holders) where it holds it.
  std::vector<Tensor> at, holders;
  for (size_t i = 0; i < xs.size(); ++i) {
    Tensor nan = binary(BinaryOp::LogicalAnd, binary(BinaryOp::Ne, xs[i], xs[i]), binary(BinaryOp::Ne, ys[i], ys[i]));
    at.push_back(binary(BinaryOp::LogicalOr, eq(xs[i], ys[i]), nan));
    holders.push_back(cast(at.back(), gs[i].dtype()));
  }
  allreduce(holders, ReduceOp::Sum, where);
  for (size_t i = 0; i < gs.size(); ++i)
    gs[i] = rt::where(at[i], binary(BinaryOp::Div, gs[i], holders[i]), zeros_like(gs[i]));
}

void broadcast_grad(std::vector<Tensor>& gs, int root, const std::string& where) {
  allreduce(gs, ReduceOp::Sum, where);
  if (rank() != root)
    for (Tensor& g : gs) g = zeros_like(g);
}

Tensor allgather_grad(const Tensor& g, int64_t rows, const std::string& where) {
  // This rank's first row in the gathered tensor: the rows of the ranks before it.
  Tensor counts = allgather(reshape(Tensor::scalar(rows), Shape{1}), where);
  int64_t first = 0;
  for (int r = 0; r < rank(); ++r) first += counts.item_int64(r);
  std::vector<Tensor> sum{g};
  allreduce(sum, ReduceOp::Sum, where);
  return take(sum[0], arange_int(first, first + rows), 0);
}

void barrier(const std::string& where) {
  need("barrier");
  State& s = state();
  agree("barrier", "barrier", where);
  if (!distributed()) return;
  char err[512] = "";
  if (s.mpi.barrier(s.timeout, err, sizeof err) != 0) fail(err);
}

void abort_all(int code) {
  State& s = state();
  if (s.loaded && s.size > 1 && s.mpi.abort) {
    std::fflush(stdout);
    std::fflush(stderr);
    s.mpi.abort(code);
  }
}

void finalize() {
  State& s = state();
  if (s.loaded && s.mpi.finalize) {
    s.loaded = false;
    s.mpi.finalize();
  }
}

}  // namespace tdl::rt::dist
