// DPTrain's step communication for SimGrid's SMPI. Each rank "computes" for the measured seconds
// (smpi_execute), then reduces the exact reduction's payload the way Open MPI 4.1 runs DPTrain's
// in-place MPI_Iallreduce: libnbc's schedule for the algorithm (ompi/mca/coll/libnbc/
// nbc_iallreduce.c), replayed with point-to-point calls, each received part summed at the
// measured rate (smpi_execute of bytes / SUM_RATE). SMPI's own MPI_Iallreduce is none of the
// algorithms MPIs use (a naive all-to-all), so the shim's dpt_iallreduce_int32s is replayed only
// with "shim". The shim sets MPI up (dpt_init, dpt_finalize) as in dptrain. Buffers are
// SMPI_SHARED_MALLOC'd (one copy for all ranks: the data do not matter, their sizes do), so 1,024
// ranks fit in memory. Rank 0 prints the mean simulated step and the reduction within it (from the
// last rank's arrival, as dptrain's timeline counts it), in seconds. bench/scaling builds and runs it:
//   smpicc -O2 -I../../Sources/MPIShim/include step.c ../../Sources/MPIShim/mpi_shim.c -o step
//   smpirun -np 64 -platform PLATFORM.xml -hostfile HOSTS ./step BYTES COMPUTE_S STEPS ALGORITHM SUM_RATE
// ALGORITHM: ring, tree, recursive_doubling, rabenseifner (powers of 2), shim.
#include "mpi_shim.h"
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rank, size;
static double sum_rate;
static char *buffer, *scratch;

static void sum(size_t bytes) {
    if (sum_rate > 0 && bytes) smpi_execute((double)bytes / sum_rate);
}

static void exchange_tagged(int to, size_t send, int from, size_t receive, int tag) {
    MPI_Request q[2];
    int n = 0;
    if (send) MPI_Isend(buffer, (int)send, MPI_BYTE, to, tag, MPI_COMM_WORLD, &q[n++]);
    if (receive) MPI_Irecv(scratch, (int)receive, MPI_BYTE, from, tag, MPI_COMM_WORLD, &q[n++]);
    MPI_Waitall(n, q, MPI_STATUSES_IGNORE);
}

static void exchange(int to, size_t send, int from, size_t receive) { exchange_tagged(to, send, from, receive, 7); }

// 2(p-1) rounds of n/p to the right neighbour and from the left; the first p-1 summed.
static void ring(size_t n) {
    size_t segment = n / (size_t)size;
    int right = (rank + 1) % size, left = (rank + size - 1) % size;
    for (int round = 0; round < 2 * size - 2; round++) {
        exchange(right, segment, left, segment);
        if (round < size - 1) sum(segment);
    }
}

static int ceil_log2(int p) {
    int l = 0;
    while ((1 << l) < p) l++;
    return l;
}

// Binomial reduce to rank 0, then a binomial broadcast in which each rank posts the sends to all
// its children at once (allred_sched_diss).
static void tree(size_t n) {
    int steps = ceil_log2(size);
    for (int r = 1; r <= steps; r++) {
        if (rank % (1 << r) == 0) {
            int peer = rank + (1 << (r - 1));
            if (peer < size) {
                exchange(0, 0, peer, n);
                sum(n);
            }
        } else {
            exchange(rank - (1 << (r - 1)), n, 0, 0);
            break;
        }
    }
    if (rank != 0)
        for (int r = 0; r < steps; r++)
            if (rank >= (1 << r) && rank < (1 << (r + 1))) exchange_tagged(0, 0, rank - (1 << r), n, 8);
    MPI_Request q[32];
    int k = 0;
    for (int r = 0; r < steps; r++)
        if ((rank + (1 << r) < size && rank < (1 << r)) || rank == 0)
            MPI_Isend(buffer, (int)n, MPI_BYTE, rank + (1 << r), 8, MPI_COMM_WORLD, &q[k++]);
    MPI_Waitall(k, q, MPI_STATUSES_IGNORE);
}

// Powers of 2: l rounds of the whole payload with rank ^ 2^k, each summed.
static void recursive_doubling(size_t n) {
    for (int distance = 1; distance < size; distance <<= 1) {
        exchange(rank ^ distance, n, rank ^ distance, n);
        sum(n);
    }
}

// Powers of 2: reduce-scatter by recursive halving (distance doubling), allgather back.
static void rabenseifner(size_t n) {
    int steps = ceil_log2(size);
    for (int k = 1; k <= steps; k++) {
        size_t part = n >> k;
        exchange(rank ^ (1 << (k - 1)), part, rank ^ (1 << (k - 1)), part);
        sum(part);
    }
    for (int k = steps; k >= 1; k--) {
        size_t part = n >> k;
        exchange(rank ^ (1 << (k - 1)), part, rank ^ (1 << (k - 1)), part);
    }
}

int main(int argc, char **argv) {
    int local_rank, local_size;
    if (argc < 6 || dpt_init(&rank, &size, &local_rank, &local_size) != 0) {
        fprintf(stderr, "usage: step BYTES COMPUTE_S STEPS ALGORITHM SUM_RATE\n");
        return 1;
    }
    size_t n = (size_t)atol(argv[1]);
    double compute = atof(argv[2]);
    int steps = atoi(argv[3]);
    const char *algorithm = argv[4];
    sum_rate = atof(argv[5]);
    if ((strcmp(algorithm, "recursive_doubling") == 0 || strcmp(algorithm, "rabenseifner") == 0) && (size & (size - 1))) {
        if (rank == 0) fprintf(stderr, "step: %s is replayed for powers of 2 only\n", algorithm);
        return 1;
    }
    buffer = SMPI_SHARED_MALLOC(n + 4);
    scratch = SMPI_SHARED_MALLOC(n + 4);
    MPI_Barrier(MPI_COMM_WORLD);
    double start = MPI_Wtime(), reducing = 0;
    for (int s = 0; s < steps; s++) {
        smpi_execute(compute);
        MPI_Barrier(MPI_COMM_WORLD);  // every rank computes alike: the reduction starts at once
        double t = MPI_Wtime();
        if (strcmp(algorithm, "ring") == 0) ring(n);
        else if (strcmp(algorithm, "tree") == 0) tree(n);
        else if (strcmp(algorithm, "recursive_doubling") == 0) recursive_doubling(n);
        else if (strcmp(algorithm, "rabenseifner") == 0) rabenseifner(n);
        else {
            int done = 0;
            if (dpt_iallreduce_int32s((int32_t *)buffer, n / 4) != 0) return 1;
            while (!done) dpt_collective_test(&done);
        }
        double mine = MPI_Wtime() - t, longest;
        // The collective ends for the job when its last rank has its result.
        MPI_Allreduce(&mine, &longest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        reducing += longest;
    }
    double step = (MPI_Wtime() - start) / steps;
    if (rank == 0) printf("%.9f %.9f\n", step, reducing / steps);
    SMPI_SHARED_FREE(buffer);
    SMPI_SHARED_FREE(scratch);
    dpt_finalize();
    return 0;
}
