/* libtdl_mpi.so: the only code of TDL compiled against MPI (OpenMPI from Debian). The
 * runtime (runtime/Dist.cpp) loads it with dlopen when the process was started by mpirun,
 * so that tdl, its executables and its libraries run without MPI everywhere else. Every
 * collective is MPI's own. The synchronizing ones (tdl_mpi_allgather_counts, _allgatherv,
 * _barrier: the caller's agreement check or barrier before each collective) are started
 * non-blocking and waited for with a deadline, so a rank that never joins (it exited, or it
 * is stuck elsewhere) is an error after `timeout` seconds instead of a hang; once every rank
 * has joined that, the data moves with the blocking MPI_Allreduce / MPI_Bcast, whose tuned
 * algorithms are faster than their non-blocking forms (libnbc's).
 * Functions return 0, or 1 with a message in `err`. */
#include <malloc.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <time.h>

#define TDL_API __attribute__((visibility("default")))

enum { TDL_BOOL = 0, TDL_I32 = 1, TDL_I64 = 2, TDL_F32 = 3, TDL_F64 = 4 };
enum { TDL_SUM = 0, TDL_MAX = 1, TDL_MIN = 2, TDL_PROD = 3 };

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int wait_for(MPI_Request* req, double timeout, const char* what, char* err, int errlen) {
  double start = now(), deadline = start + timeout;
  int done = 0;
  struct timespec pause = {0, 0};
  long spins = 0;
  for (;;) {
    int rc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) {
      char text[MPI_MAX_ERROR_STRING];
      int len = 0;
      MPI_Error_string(rc, text, &len);
      snprintf(err, (size_t)errlen, "%s failed: %s", what, text);
      return 1;
    }
    if (done) return 0;
    if (now() > deadline) {
      snprintf(err, (size_t)errlen,
               "%s: not every rank joined within %.0f s (a rank exited, failed, or is waiting in another "
               "collective; TDL_DIST_TIMEOUT sets the limit)",
               what, timeout);
      return 1;
    }
    /* Spin briefly for fast collectives, then poll while yielding the core (a rank that
     * shares it runs; a nap would cost the timer slack, 50 us, on every collective that
     * waits a little), and only after 2 ms back off to 50 us naps. */
    ++spins;
    if (spins > 2000 && now() > start + 0.002) {
      pause.tv_nsec = 50000;
      nanosleep(&pause, NULL);
    } else if (spins > 2000) {
      sched_yield();
    }
  }
}

static MPI_Datatype mpi_type(int dtype) {
  switch (dtype) {
    case TDL_BOOL: return MPI_C_BOOL;
    case TDL_I32: return MPI_INT32_T;
    case TDL_I64: return MPI_INT64_T;
    case TDL_F32: return MPI_FLOAT;
    case TDL_F64: return MPI_DOUBLE;
    default: return MPI_DATATYPE_NULL;
  }
}

static MPI_Op mpi_op(int op, int dtype) {
  if (dtype == TDL_BOOL) return op == TDL_MIN || op == TDL_PROD ? MPI_LAND : MPI_LOR;
  switch (op) {
    case TDL_MAX: return MPI_MAX;
    case TDL_MIN: return MPI_MIN;
    case TDL_PROD: return MPI_PROD;
    default: return MPI_SUM;
  }
}

TDL_API int tdl_mpi_init(int* rank, int* size, char* err, int errlen) {
  int inited = 0, provided = 0;
  /* MPI's collectives malloc temporaries as large as the message. glibc serves those from
   * fresh mmaps (every page a fault, 30x the reduction's time on a VM) until a large free
   * raises its threshold, which TDL's buffer cache never does: keep them in the heap, and
   * let the heap grow and shrink in large steps. */
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  mallopt(M_TOP_PAD, 64 << 20);
  MPI_Initialized(&inited);
  if (!inited && MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
    snprintf(err, (size_t)errlen, "MPI_Init failed");
    return 1;
  }
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, rank);
  MPI_Comm_size(MPI_COMM_WORLD, size);
  return 0;
}

TDL_API void tdl_mpi_finalize(void) {
  int inited = 0, finalized = 0;
  MPI_Initialized(&inited);
  MPI_Finalized(&finalized);
  if (inited && !finalized) MPI_Finalize();
}

TDL_API void tdl_mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

/* `count` elements of `dtype` from `in` (NULL: in place) into `out`, in chunks below 2^31. */
TDL_API int tdl_mpi_allreduce(const void* in, void* buf, int64_t count, int dtype, int op, double timeout, char* err,
                              int errlen) {
  MPI_Datatype t = mpi_type(dtype);
  if (t == MPI_DATATYPE_NULL) {
    snprintf(err, (size_t)errlen, "allreduce: bad dtype %d", dtype);
    return 1;
  }
  int item = 0;
  MPI_Type_size(t, &item);
  const int64_t chunk = (int64_t)1 << 30;
  for (int64_t at = 0; at < count; at += chunk) {
    int n = (int)(count - at < chunk ? count - at : chunk);
    const void* src = in ? (const void*)((const char*)in + at * item) : MPI_IN_PLACE;
    (void)timeout;
    if (MPI_Allreduce(src, (char*)buf + at * item, n, t, mpi_op(op, dtype), MPI_COMM_WORLD) != MPI_SUCCESS) {
      snprintf(err, (size_t)errlen, "allreduce: MPI_Allreduce failed");
      return 1;
    }
  }
  return 0;
}

TDL_API int tdl_mpi_bcast(void* buf, int64_t bytes, int root, double timeout, char* err, int errlen) {
  const int64_t chunk = (int64_t)1 << 30;
  for (int64_t at = 0; at < bytes; at += chunk) {
    int n = (int)(bytes - at < chunk ? bytes - at : chunk);
    (void)timeout;
    if (MPI_Bcast((char*)buf + at, n, MPI_BYTE, root, MPI_COMM_WORLD) != MPI_SUCCESS) {
      snprintf(err, (size_t)errlen, "broadcast: MPI_Bcast failed");
      return 1;
    }
  }
  return 0;
}

/* Each rank sends `bytes` (which may differ: counts[] receives every rank's), gathered in
 * rank order into `out` (sized by the caller from counts, after a first call with out = NULL
 * that only fills counts). */
TDL_API int tdl_mpi_allgather_counts(int64_t bytes, int64_t* counts, double timeout, char* err, int errlen) {
  MPI_Request req;
  if (MPI_Iallgather(&bytes, 1, MPI_INT64_T, counts, 1, MPI_INT64_T, MPI_COMM_WORLD, &req) != MPI_SUCCESS) {
    snprintf(err, (size_t)errlen, "allgather: MPI_Iallgather failed");
    return 1;
  }
  return wait_for(&req, timeout, "allgather", err, errlen);
}

TDL_API int tdl_mpi_allgatherv(const void* in, int64_t bytes, void* out, const int64_t* counts, int size, double timeout,
                               char* err, int errlen) {
  int recv[4096], displ[4096];
  if (size > 4096) {
    snprintf(err, (size_t)errlen, "allgather: more than 4096 ranks");
    return 1;
  }
  int64_t at = 0;
  for (int r = 0; r < size; ++r) {
    if (counts[r] > 0x7fffffff || at > 0x7fffffff) {
      snprintf(err, (size_t)errlen, "allgather: more than 2 GiB gathered");
      return 1;
    }
    recv[r] = (int)counts[r];
    displ[r] = (int)at;
    at += counts[r];
  }
  MPI_Request req;
  if (MPI_Iallgatherv(in, (int)bytes, MPI_BYTE, out, recv, displ, MPI_BYTE, MPI_COMM_WORLD, &req) != MPI_SUCCESS) {
    snprintf(err, (size_t)errlen, "allgather: MPI_Iallgatherv failed");
    return 1;
  }
  return wait_for(&req, timeout, "allgather", err, errlen);
}

TDL_API int tdl_mpi_barrier(double timeout, char* err, int errlen) {
  MPI_Request req;
  if (MPI_Ibarrier(MPI_COMM_WORLD, &req) != MPI_SUCCESS) {
    snprintf(err, (size_t)errlen, "barrier: MPI_Ibarrier failed");
    return 1;
  }
  return wait_for(&req, timeout, "barrier", err, errlen);
}
