// Plain C face of MPI for Swift. OpenMPI's handles (MPI_COMM_WORLD, MPI_FLOAT, ...) are
// address-cast macros Swift cannot import, so this is the only code that includes mpi.h.
// Every function returns an MPI error code (0 = success) unless it says otherwise.
#ifndef DPTRAIN_MPI_SHIM_H
#define DPTRAIN_MPI_SHIM_H

#include <stddef.h>
#include <stdint.h>

/// Reduction operations for dpt_allreduce_doubles.
enum dpt_op { DPT_SUM = 0, DPT_MAX = 1, DPT_MIN = 2 };

/// Initialises MPI (thread level FUNNELED: only the main thread calls MPI; helper threads
/// such as BLAS or a watchdog never do) and sets MPI_ERRORS_RETURN on the world.
int dpt_init(int *rank, int *size, int *local_rank, int *local_size);
int dpt_finalize(void);
/// The MPI library's first line of MPI_Get_library_version ("Open MPI v4.1.4, …", "MPICH
/// Version: 4.0.2"), NUL-terminated. Callable before dpt_init.
void dpt_library_version(char *out, int capacity);
/// 1 if MPI_Init has run and MPI_Finalize has not.
int dpt_is_active(void);

int dpt_allreduce_doubles(double *buffer, int count, enum dpt_op op);
int dpt_broadcast(void *buffer, size_t bytes, int root);
/// Copies `bytes` bytes from every rank into `all` (rank r's at r * bytes).
int dpt_allgather_bytes(const void *mine, int bytes, void *all);

// The step's watched sum allreduces, non-blocking so the main thread can watch them while it
// waits and a bucketed reduction can start one per bucket while the backward pass runs (MPI
// stays FUNNELED: every call below is made by the main thread). Each sum goes into a slot
// (0 ..< DPT_MAX_COLLECTIVES) the caller picks and does not reuse before the sum completed;
// counts above INT_MAX are refused with MPI_ERR_COUNT.
enum { DPT_MAX_COLLECTIVES = 256 };
int dpt_start_sum_floats(float *buffer, size_t count, int slot);
/// Sums modulo 2^32: two's-complement values sum exactly whenever the total fits.
int dpt_start_sum_int32s(int32_t *buffer, size_t count, int slot);
/// Sets *done to 1 once the sum in `slot` has completed (and drives every sum's progress).
int dpt_sum_test(int slot, int *done);
/// One sum at a time, in slot 0 (what bench/smpi's replay of a step calls).
int dpt_iallreduce_floats(float *buffer, size_t count);
int dpt_iallreduce_int32s(int32_t *buffer, size_t count);
int dpt_collective_test(int *done);

// Notes for the stall watchdog: before each watched collective every other rank sends rank 0
// the collective's sequence number ("arrived"), and again now and then while it waits ("still
// here"); rank 0 keeps one receive posted per peer. Notes from one peer arrive in order.
/// Rank 0 posts its receives; the others post theirs for rank 0's notes.
int dpt_notes_open(void);
/// A non-root rank: sends `sequence` to rank 0. With `must` 0 the note is skipped while the
/// previous one is still in flight; with 1 that one is completed first.
int dpt_note_send(int64_t sequence, int must);
/// Rank 0: latest[peer] = the newest sequence each peer sent, count[peer] += notes received
/// (entries 0 untouched).
int dpt_notes_poll(int64_t *latest, int64_t *count);
/// Rank 0: sends `sequence` to every peer (the same notes the other way, so that a peer can
/// tell a silent rank 0); `must` as for dpt_note_send, per peer.
int dpt_root_note_send(int64_t sequence, int must);
/// A peer: *latest = the newest sequence rank 0 sent, *count += notes received.
int dpt_root_notes_poll(int64_t *latest, int64_t *count);
/// Every rank, collectively: each other rank sends a last note `last` + 1 and rank 0 receives
/// every note up to it, then cancels its spare receives; rank 0 sends each peer its last note
/// `last` + 1 the same way: nothing is pending at MPI_Finalize.
int dpt_notes_close(int64_t last);

/// Ends every rank of the job; does not return.
void dpt_abort(int code);
/// Writes MPI's text for an error code into `out` (NUL-terminated).
void dpt_error_string(int code, char *out, int capacity);

#endif
