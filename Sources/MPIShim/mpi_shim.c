#include "mpi_shim.h"
#include <limits.h>
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>

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

int dpt_allreduce_floats(float *buffer, size_t count) {
    // MPI counts are ints: reduce in chunks so any buffer size works.
    while (count > 0) {
        int chunk = count > INT_MAX ? INT_MAX : (int)count;
        int rc = MPI_Allreduce(MPI_IN_PLACE, buffer, chunk, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return rc;
        buffer += chunk;
        count -= (size_t)chunk;
    }
    return MPI_SUCCESS;
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

int dpt_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }

void dpt_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

double dpt_wtime(void) { return MPI_Wtime(); }

void dpt_error_string(int code, char *out, int capacity) {
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    if (capacity <= 0) return;
    if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) length = 0;
    if (length >= capacity) length = capacity - 1;
    for (int i = 0; i < length; i++) out[i] = text[i];
    out[length] = '\0';
}

int dpt_allgather_bytes(const void *mine, int bytes, void *all) {
    return MPI_Allgather(mine, bytes, MPI_BYTE, all, bytes, MPI_BYTE, MPI_COMM_WORLD);
}

static MPI_Request collective = MPI_REQUEST_NULL;

static int start_allreduce(void *buffer, size_t count, MPI_Datatype type) {
    if (count > INT_MAX) return MPI_ERR_COUNT;
    return MPI_Iallreduce(MPI_IN_PLACE, buffer, (int)count, type, MPI_SUM, MPI_COMM_WORLD, &collective);
}

int dpt_iallreduce_floats(float *buffer, size_t count) { return start_allreduce(buffer, count, MPI_FLOAT); }

int dpt_iallreduce_int32s(int32_t *buffer, size_t count) { return start_allreduce(buffer, count, MPI_INT32_T); }

int dpt_collective_test(int *done) { return MPI_Test(&collective, done, MPI_STATUS_IGNORE); }

enum { ARRIVAL_TAG = 7301 };
static int arrivals_size = 0;
static MPI_Request *arrival_receives = NULL;  // rank 0: one per peer (index = rank)
static int64_t *arrival_values = NULL;        // rank 0: the receive buffers
static int64_t *arrival_latest = NULL;        // rank 0: newest sequence seen per peer
static MPI_Request arrival_send_request = MPI_REQUEST_NULL;
static int64_t arrival_send_value = 0;

static int post_receive(int peer) {
    return MPI_Irecv(&arrival_values[peer], 1, MPI_INT64_T, peer, ARRIVAL_TAG, MPI_COMM_WORLD, &arrival_receives[peer]);
}

int dpt_arrivals_open(void) {
    int rank = 0, rc;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &arrivals_size);
    if (rank != 0) return MPI_SUCCESS;
    arrival_receives = malloc(sizeof(MPI_Request) * (size_t)arrivals_size);
    arrival_values = calloc((size_t)arrivals_size, sizeof(int64_t));
    arrival_latest = calloc((size_t)arrivals_size, sizeof(int64_t));
    if (!arrival_receives || !arrival_values || !arrival_latest) return MPI_ERR_NO_MEM;
    arrival_receives[0] = MPI_REQUEST_NULL;
    for (int peer = 1; peer < arrivals_size; peer++)
        if ((rc = post_receive(peer)) != MPI_SUCCESS) return rc;
    return MPI_SUCCESS;
}

int dpt_arrival_send(int64_t sequence) {
    int rc = MPI_Wait(&arrival_send_request, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) return rc;
    arrival_send_value = sequence;
    return MPI_Isend(&arrival_send_value, 1, MPI_INT64_T, 0, ARRIVAL_TAG, MPI_COMM_WORLD, &arrival_send_request);
}

int dpt_arrivals_poll(int64_t *latest) {
    for (int peer = 1; peer < arrivals_size; peer++) {
        // Notes from one peer arrive in order (MPI does not overtake): drain what is there.
        for (;;) {
            int done = 0, rc = MPI_Test(&arrival_receives[peer], &done, MPI_STATUS_IGNORE);
            if (rc != MPI_SUCCESS) return rc;
            if (!done) break;
            arrival_latest[peer] = arrival_values[peer];
            if ((rc = post_receive(peer)) != MPI_SUCCESS) return rc;
        }
        latest[peer] = arrival_latest[peer];
    }
    return MPI_SUCCESS;
}

int dpt_arrivals_close(int64_t last) {
    int rc = MPI_Wait(&arrival_send_request, MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS || arrival_receives == NULL) return rc;
    for (int peer = 1; peer < arrivals_size; peer++) {
        while (arrival_latest[peer] < last) {
            if ((rc = MPI_Wait(&arrival_receives[peer], MPI_STATUS_IGNORE)) != MPI_SUCCESS) return rc;
            arrival_latest[peer] = arrival_values[peer];
            if ((rc = post_receive(peer)) != MPI_SUCCESS) return rc;
        }
        // The spare receive: no note will come for it.
        MPI_Cancel(&arrival_receives[peer]);
        if ((rc = MPI_Wait(&arrival_receives[peer], MPI_STATUS_IGNORE)) != MPI_SUCCESS) return rc;
    }
    free(arrival_receives);
    free(arrival_values);
    free(arrival_latest);
    arrival_receives = NULL;
    arrival_values = arrival_latest = NULL;
    return MPI_SUCCESS;
}
