// Data parallelism over MPI (SPEC §12's `dist` module; docs/distributed.md). The collectives
// are MPI's own, in libtdl_mpi.so (runtime/mpi/tdl_mpi.c, the only code compiled against
// MPI), which is loaded with dlopen when the process was started by mpirun; otherwise there
// is one rank and every collective is the identity, so a script runs alone unchanged.
//
// Each collective first checks that every rank calls the same one (the same kind, op, dtypes,
// shapes, and sequence number): a cheap allgather of a small record; a mismatch is an error
// on every rank naming each rank's `.tdl` line (TDL_DIST_CHECK=0 turns the check off). A rank
// that never joins makes the others fail after TDL_DIST_TIMEOUT seconds (default 120).
#pragma once

#include <string>
#include <vector>

#include "runtime/Tensor.h"

namespace tdl::rt::dist {

enum class ReduceOp { Sum, Mean, Max, Min };
// "sum", "mean", "max", "min" (allreduce's `op`); parse_reduce_op: false for any other name.
const char* reduce_op_name(ReduceOp op);
bool parse_reduce_op(const std::string& name, ReduceOp& op);

// This process's rank and the number of ranks (0 and 1 without mpirun).
int rank();
int size();
// Whether collectives talk to other processes (started by mpirun with MPI loaded).
bool distributed();

// `where`: the caller's position (FILE:LINE:COL) for messages. Tensors are replaced by their
// results. Trees of many tensors go as one call: they are packed into large messages per
// dtype (buckets of up to 64 MiB), as Horovod and DDP do.
void allreduce(std::vector<Tensor>& xs, ReduceOp op, const std::string& where);
void broadcast(std::vector<Tensor>& xs, int root, const std::string& where);
// The ranks' tensors concatenated along axis 0, in rank order (their other dims agree).
Tensor allgather(const Tensor& x, const std::string& where);
void barrier(const std::string& where);

// The collectives' adjoints (gradients), one implementation for eager tapes and compiled
// graph fns. The loss they differentiate is the sum of every rank's loss, so each starts by
// summing the ranks' output gradients `gs` (one allreduce):
//   - allreduce max/min (xs: this rank's inputs, ys: the results): each element's gradient
//     goes to the lowest rank holding the extreme, as argmax picks the first;
//   - broadcast from `root`: the root gets the sum, the other ranks zeros;
//   - allgather: each rank gets the sum's rows that came from it (`rows` of them).
// gs are replaced by the inputs' gradients.
void allreduce_extreme_grad(std::vector<Tensor>& gs, const std::vector<Tensor>& xs, const std::vector<Tensor>& ys,
                            const std::string& where);
void broadcast_grad(std::vector<Tensor>& gs, int root, const std::string& where);
Tensor allgather_grad(const Tensor& g, int64_t rows, const std::string& where);

// Whether this rank writes what print() prints: rank 0, or every rank with all_ranks.
// Progress bars and plots are rank 0's only.
bool prints_here(bool allRanks);

// MPI_Finalize at a normal exit (registered when MPI is first used).
void finalize();
// After an error on this rank: stops every rank (MPI_Abort) so that none waits for it; a
// no-op without MPI.
void abort_all(int code);

}  // namespace tdl::rt::dist
