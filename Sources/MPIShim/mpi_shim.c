#include "mpi_shim.h"
#include <limits.h>
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>

// The sums in flight: a bucketed reduction starts several before it waits for the first.
static MPI_Request collectives[DPT_MAX_COLLECTIVES];

int dpt_init(int *rank, int *size, int *local_rank, int *local_size) {
    // Open MPI's libnbc runs an in-place MPI_Iallreduce (each bucket's sum) as a binomial tree
    // unless told otherwise: the whole payload up and down the tree. Rabenseifner's reduce-scatter
    // + allgather moves 2(p-1)/p of it, so less is left after the backward pass (bench/overlap) and
    // large jobs scale (bench/scaling: 91 % weak efficiency at 64 ranks on 10 GbE, the tree 50 %).
    // The exact reduction sums integers, so its bits do not depend on the algorithm. A setting of
    // the user's (mpirun --mca, the environment) wins; other MPIs ignore the variable.
    setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "3", 0);
    int provided = 0;
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return rc;
    for (int i = 0; i < DPT_MAX_COLLECTIVES; i++) collectives[i] = MPI_REQUEST_NULL;
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

void dpt_library_version(char *out, int capacity) {
    char text[MPI_MAX_LIBRARY_VERSION_STRING];
    int length = 0;
    if (capacity <= 0) return;
    if (MPI_Get_library_version(text, &length) != MPI_SUCCESS) length = 0;
    // The first line names the implementation and version; MPICH adds its configure flags after it.
    int end = 0;
    while (end < length && end < capacity - 1 && text[end] != '\n' && text[end] != '\0') end++;
    for (int i = 0; i < end; i++) out[i] = text[i];
    out[end] = '\0';
}

int dpt_is_active(void) {
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    return initialized && !finalized;
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

int dpt_allgather_bytes(const void *mine, int bytes, void *all) {
    return MPI_Allgather(mine, bytes, MPI_BYTE, all, bytes, MPI_BYTE, MPI_COMM_WORLD);
}


static int start_allreduce(void *buffer, size_t count, MPI_Datatype type, int slot) {
    if (count > INT_MAX) return MPI_ERR_COUNT;
    if (slot < 0 || slot >= DPT_MAX_COLLECTIVES) return MPI_ERR_REQUEST;
    return MPI_Iallreduce(MPI_IN_PLACE, buffer, (int)count, type, MPI_SUM, MPI_COMM_WORLD, &collectives[slot]);
}

int dpt_start_sum_floats(float *buffer, size_t count, int slot) { return start_allreduce(buffer, count, MPI_FLOAT, slot); }

// Summed as unsigned: the sum wraps modulo 2^32 by definition, which is what the exact
// fixed-point reduction of two's-complement values needs (signed overflow is undefined).
int dpt_start_sum_int32s(int32_t *buffer, size_t count, int slot) { return start_allreduce(buffer, count, MPI_UINT32_T, slot); }

int dpt_sum_test(int slot, int *done) {
    if (slot < 0 || slot >= DPT_MAX_COLLECTIVES) return MPI_ERR_REQUEST;
    return MPI_Test(&collectives[slot], done, MPI_STATUS_IGNORE);
}

int dpt_iallreduce_floats(float *buffer, size_t count) { return dpt_start_sum_floats(buffer, count, 0); }
int dpt_iallreduce_int32s(int32_t *buffer, size_t count) { return dpt_start_sum_int32s(buffer, count, 0); }
int dpt_collective_test(int *done) { return dpt_sum_test(0, done); }

enum { NOTE_TAG = 7301 };
static int notes_size = 0, notes_rank = 0;
static MPI_Request *note_receives = NULL;  // rank 0: one per peer (index = rank)
static int64_t *note_values = NULL;        // rank 0: the receive buffers
static int64_t *note_latest = NULL;        // rank 0: newest sequence seen per peer
static MPI_Request note_send_request = MPI_REQUEST_NULL;
static int64_t note_send_value = 0;

static int post_receive(int peer) {
    return MPI_Irecv(&note_values[peer], 1, MPI_INT64_T, peer, NOTE_TAG, MPI_COMM_WORLD, &note_receives[peer]);
}

// The other way: rank 0 tells every peer it arrived and is still there, so a peer can tell a
// silent rank 0 (stopped, swapped out) and end the job. Own tag, so the two never mix.
enum { ROOT_NOTE_TAG = 7302 };
static MPI_Request *root_sends = NULL;    // rank 0: one per peer (index = rank)
static int64_t *root_send_values = NULL;  // rank 0: their buffers
static MPI_Request root_receive = MPI_REQUEST_NULL;  // a peer: the receive from rank 0
static int64_t root_value = 0, root_latest = 0;

static int post_root_receive(void) {
    return MPI_Irecv(&root_value, 1, MPI_INT64_T, 0, ROOT_NOTE_TAG, MPI_COMM_WORLD, &root_receive);
}

int dpt_notes_open(void) {
    int rc;
    MPI_Comm_rank(MPI_COMM_WORLD, &notes_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &notes_size);
    if (notes_rank != 0) return post_root_receive();
    root_sends = malloc(sizeof(MPI_Request) * (size_t)notes_size);
    root_send_values = calloc((size_t)notes_size, sizeof(int64_t));
    if (!root_sends || !root_send_values) return MPI_ERR_NO_MEM;
    for (int peer = 0; peer < notes_size; peer++) root_sends[peer] = MPI_REQUEST_NULL;
    note_receives = malloc(sizeof(MPI_Request) * (size_t)notes_size);
    note_values = calloc((size_t)notes_size, sizeof(int64_t));
    note_latest = calloc((size_t)notes_size, sizeof(int64_t));
    if (!note_receives || !note_values || !note_latest) return MPI_ERR_NO_MEM;
    note_receives[0] = MPI_REQUEST_NULL;
    for (int peer = 1; peer < notes_size; peer++)
        if ((rc = post_receive(peer)) != MPI_SUCCESS) return rc;
    return MPI_SUCCESS;
}

int dpt_note_send(int64_t sequence, int must) {
    int rc, done = 0;
    if (must) {
        rc = MPI_Wait(&note_send_request, MPI_STATUS_IGNORE);
    } else {
        rc = MPI_Test(&note_send_request, &done, MPI_STATUS_IGNORE);
        if (rc == MPI_SUCCESS && !done) return MPI_SUCCESS;
    }
    if (rc != MPI_SUCCESS) return rc;
    note_send_value = sequence;
    return MPI_Isend(&note_send_value, 1, MPI_INT64_T, 0, NOTE_TAG, MPI_COMM_WORLD, &note_send_request);
}

int dpt_root_note_send(int64_t sequence, int must) {
    for (int peer = 1; peer < notes_size; peer++) {
        int rc, done = 0;
        if (must) {
            rc = MPI_Wait(&root_sends[peer], MPI_STATUS_IGNORE);
        } else {
            rc = MPI_Test(&root_sends[peer], &done, MPI_STATUS_IGNORE);
            if (rc == MPI_SUCCESS && !done) continue;
        }
        if (rc != MPI_SUCCESS) return rc;
        root_send_values[peer] = sequence;
        rc = MPI_Isend(&root_send_values[peer], 1, MPI_INT64_T, peer, ROOT_NOTE_TAG, MPI_COMM_WORLD, &root_sends[peer]);
        if (rc != MPI_SUCCESS) return rc;
    }
    return MPI_SUCCESS;
}

int dpt_root_notes_poll(int64_t *latest, int64_t *count) {
    for (;;) {
        int done = 0, rc = MPI_Test(&root_receive, &done, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return rc;
        if (!done) break;
        root_latest = root_value;
        *count += 1;
        if ((rc = post_root_receive()) != MPI_SUCCESS) return rc;
    }
    *latest = root_latest;
    return MPI_SUCCESS;
}

int dpt_notes_poll(int64_t *latest, int64_t *count) {
    for (int peer = 1; peer < notes_size; peer++) {
        for (;;) {
            int done = 0, rc = MPI_Test(&note_receives[peer], &done, MPI_STATUS_IGNORE);
            if (rc != MPI_SUCCESS) return rc;
            if (!done) break;
            note_latest[peer] = note_values[peer];
            count[peer] += 1;
            if ((rc = post_receive(peer)) != MPI_SUCCESS) return rc;
        }
        latest[peer] = note_latest[peer];
    }
    return MPI_SUCCESS;
}

int dpt_notes_close(int64_t last) {
    int rc;
    if (notes_rank != 0) {
        if ((rc = dpt_note_send(last + 1, 1)) != MPI_SUCCESS) return rc;
        // Rank 0's notes up to its own last one; no receive is left posted after it.
        while (root_latest <= last) {
            if ((rc = MPI_Wait(&root_receive, MPI_STATUS_IGNORE)) != MPI_SUCCESS) return rc;
            root_latest = root_value;
            if (root_latest <= last && (rc = post_root_receive()) != MPI_SUCCESS) return rc;
        }
        return MPI_Wait(&note_send_request, MPI_STATUS_IGNORE);
    }
    if (note_receives == NULL) return MPI_SUCCESS;
    if ((rc = dpt_root_note_send(last + 1, 1)) != MPI_SUCCESS) return rc;
    for (int peer = 1; peer < notes_size; peer++) {
        while (note_latest[peer] <= last) {
            if ((rc = MPI_Wait(&note_receives[peer], MPI_STATUS_IGNORE)) != MPI_SUCCESS) return rc;
            note_latest[peer] = note_values[peer];
            if ((rc = post_receive(peer)) != MPI_SUCCESS) return rc;
        }
        // The spare receive: no note comes after the last.
        MPI_Cancel(&note_receives[peer]);
        if ((rc = MPI_Wait(&note_receives[peer], MPI_STATUS_IGNORE)) != MPI_SUCCESS) return rc;
    }
    for (int peer = 1; peer < notes_size; peer++)
        if ((rc = MPI_Wait(&root_sends[peer], MPI_STATUS_IGNORE)) != MPI_SUCCESS) return rc;
    free(root_sends);
    free(root_send_values);
    root_sends = NULL;
    root_send_values = NULL;
    free(note_receives);
    free(note_values);
    free(note_latest);
    note_receives = NULL;
    note_values = note_latest = NULL;
    return MPI_SUCCESS;
}
