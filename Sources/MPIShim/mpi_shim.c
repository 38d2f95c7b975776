#include "mpi_shim.h"
#include <limits.h>
#include <mpi.h>
#include <stdint.h>

int dpt_init(int *rank, int *size, int *local_rank, int *local_size) {
    int provided = 0;
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return rc;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if ((rc = MPI_Comm_rank(MPI_COMM_WORLD, rank)) != MPI_SUCCESS) return rc;
    if ((rc = MPI_Comm_size(MPI_COMM_WORLD, size)) != MPI_SUCCESS) return rc;
    // Ranks on the same node share cores: the trainer sizes its BLAS thread pool from this.
    MPI_Comm node;
    rc = MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, *rank, MPI_INFO_NULL, &node);
    if (rc != MPI_SUCCESS) return rc;
    MPI_Comm_rank(node, local_rank);
    MPI_Comm_size(node, local_size);
    return MPI_Comm_free(&node);
}

int dpt_finalize(void) { return MPI_Finalize(); }

int dpt_is_active(void) {
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    return initialized && !finalized;
}

// MPI counts are ints: reduce in chunks so any buffer size works.
static int allreduce_sum_chunked(char *buffer, size_t count, size_t item_size, MPI_Datatype type) {
    while (count > 0) {
        int chunk = count > INT_MAX ? INT_MAX : (int)count;
        int rc = MPI_Allreduce(MPI_IN_PLACE, buffer, chunk, type, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return rc;
        buffer += (size_t)chunk * item_size;
        count -= (size_t)chunk;
    }
    return MPI_SUCCESS;
}

int dpt_allreduce_floats(float *buffer, size_t count) {
    return allreduce_sum_chunked((char *)buffer, count, sizeof(float), MPI_FLOAT);
}

// Unsigned: the sum wraps modulo 2^32 by definition, which is what an exact fixed-point
// reduction of two's-complement values needs (signed overflow would be undefined).
int dpt_allreduce_uint32s(uint32_t *buffer, size_t count) {
    return allreduce_sum_chunked((char *)buffer, count, sizeof(uint32_t), MPI_UINT32_T);
}

int dpt_allreduce_doubles(double *buffer, int count, enum dpt_op op) {
    MPI_Op mpi_op = op == DPT_MAX ? MPI_MAX : op == DPT_MIN ? MPI_MIN : MPI_SUM;
    return MPI_Allreduce(MPI_IN_PLACE, buffer, count, MPI_DOUBLE, mpi_op, MPI_COMM_WORLD);
}

int dpt_broadcast(void *buffer, size_t bytes, int root) {
    uint8_t *bytes_ptr = buffer;
    while (bytes > 0) {
        int chunk = bytes > INT_MAX ? INT_MAX : (int)bytes;
        int rc = MPI_Bcast(bytes_ptr, chunk, MPI_BYTE, root, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return rc;
        bytes_ptr += chunk;
        bytes -= (size_t)chunk;
    }
    return MPI_SUCCESS;
}


void dpt_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }


void dpt_error_string(int code, char *out, int capacity) {
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    if (capacity <= 0) return;
    if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) length = 0;
    if (length >= capacity) length = capacity - 1;
    for (int i = 0; i < length; i++) out[i] = text[i];
    out[length] = '\0';
}
