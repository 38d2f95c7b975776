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
/// 1 if MPI_Init has run and MPI_Finalize has not.
int dpt_is_active(void);

int dpt_allreduce_floats(float *buffer, size_t count);
/// In-place sum modulo 2^32 (two's-complement values sum exactly when the total fits).
int dpt_allreduce_uint32s(uint32_t *buffer, size_t count);
int dpt_allreduce_doubles(double *buffer, int count, enum dpt_op op);
int dpt_broadcast(void *buffer, size_t bytes, int root);
/// Ends every rank of the job; does not return.
void dpt_abort(int code);
/// Writes MPI's text for an error code into `out` (NUL-terminated).
void dpt_error_string(int code, char *out, int capacity);

#endif
