// bench/probe: what bench/scaling needs to know about a network, measured with MPI the way
// DPTrain's ranks talk (non-blocking calls, polled with MPI_Test and the same pauses as
// Sources/Collectives/WatchedCollective.swift), as osu_latency / osu_bw / osu_mbw_mr would:
//
//   mpicc -O2 bench/probe.c -o probe
//   mpirun -np P probe pingpong SIZE...  rank 0 <-> rank 1, the others idle: per SIZE the one-way
//                                        time (half the median round trip), seconds
//   mpirun -np P probe ring SIZE         every rank sends SIZE to its right neighbour while it
//                                        receives from its left, all at once: the median time
//   mpirun -np P probe allreduce COUNT   in-place MPI_Iallreduce of COUNT uint32 (DPTrain's call),
//                                        median time over the ranks' slowest
//   mpirun -np 1 probe local COUNT       MPI_Reduce_local (sum) and memcpy of COUNT uint32 on one
//                                        rank: the collectives' own arithmetic
//
// Prints one line per measurement: "<what> <size> <seconds>".
#define _GNU_SOURCE
#include <mpi.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, compare);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// DPTrain's wait: yields for the first millisecond, then sleeps 25 us growing to 0.2 ms.
static void wait_all(int n, MPI_Request *requests) {
    double began = MPI_Wtime();
    for (int sleeps = 0;;) {
        int done = 0;
        MPI_Testall(n, requests, &done, MPI_STATUSES_IGNORE);
        if (done) return;
        if (MPI_Wtime() - began < 1e-3) { sched_yield(); continue; }
        int shift = sleeps++ / 8;
        long ns = 25000L << (shift < 3 ? shift : 3);
        struct timespec t = {0, ns < 200000 ? ns : 200000};
        nanosleep(&t, NULL);
    }
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (argc < 3 || (size < 2 && strcmp(argv[1], "local") != 0)) {
        if (rank == 0) fprintf(stderr, "usage: probe pingpong SIZE... | ring SIZE | allreduce COUNT (2 ranks or more)\n");
        MPI_Finalize();
        return 2;
    }
    const char *what = argv[1];
    if (strcmp(what, "local") == 0) {
        long n = atol(argv[2]);
        uint32_t *a = calloc((size_t)n, 4), *b = calloc((size_t)n, 4);
        double op[16], copy[16];
        for (int r = -2; r < 16; r++) {
            double t = MPI_Wtime();
            MPI_Reduce_local(a, b, (int)n, MPI_UINT32_T, MPI_SUM);
            double u = MPI_Wtime();
            memcpy(a, b, (size_t)n * 4);
            if (r >= 0) op[r] = u - t, copy[r] = MPI_Wtime() - u;
        }
        if (rank == 0) printf("op %ld %.9f\ncopy %ld %.9f\n", n * 4, median(op, 16), n * 4, median(copy, 16));
        MPI_Finalize();
        return 0;
    }
    size_t largest = 0;
    for (int i = 2; i < argc; i++) {
        size_t s = (size_t)atol(argv[i]) * (strcmp(what, "allreduce") == 0 ? 4 : 1);
        if (s > largest) largest = s;
    }
    char *out = calloc(largest + 1, 1), *in = calloc(largest + 1, 1);
    double times[64];
    for (int i = 2; i < argc; i++) {
        long n = atol(argv[i]);
        int repeats = n <= 65536 ? 64 : 16;
        for (int r = -2; r < repeats; r++) {  // two warm-up rounds
            MPI_Barrier(MPI_COMM_WORLD);
            double t = MPI_Wtime();
            MPI_Request q[2];
            if (strcmp(what, "pingpong") == 0) {
                if (rank == 0) {
                    MPI_Isend(out, (int)n, MPI_BYTE, 1, 1, MPI_COMM_WORLD, &q[0]);
                    MPI_Irecv(in, (int)n, MPI_BYTE, 1, 2, MPI_COMM_WORLD, &q[1]);
                    wait_all(2, q);
                } else if (rank == 1) {
                    MPI_Irecv(in, (int)n, MPI_BYTE, 0, 1, MPI_COMM_WORLD, &q[0]);
                    wait_all(1, q);
                    MPI_Isend(out, (int)n, MPI_BYTE, 0, 2, MPI_COMM_WORLD, &q[0]);
                    wait_all(1, q);
                }
                t = (MPI_Wtime() - t) / 2;
            } else if (strcmp(what, "ring") == 0) {
                MPI_Irecv(in, (int)n, MPI_BYTE, (rank + size - 1) % size, 3, MPI_COMM_WORLD, &q[0]);
                MPI_Isend(out, (int)n, MPI_BYTE, (rank + 1) % size, 3, MPI_COMM_WORLD, &q[1]);
                wait_all(2, q);
                t = MPI_Wtime() - t;
            } else {
                MPI_Iallreduce(MPI_IN_PLACE, out, (int)n, MPI_UINT32_T, MPI_SUM, MPI_COMM_WORLD, &q[0]);
                wait_all(1, q);
                t = MPI_Wtime() - t;
            }
            double slowest;
            MPI_Reduce(&t, &slowest, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
            if (r >= 0) times[r] = slowest;
        }
        if (rank == 0) printf("%s %ld %.9f\n", what, n, median(times, repeats));
    }
    free(out);
    free(in);
    MPI_Finalize();
    return 0;
}
