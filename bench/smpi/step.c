// DPTrain's step communication for SimGrid's SMPI: each rank "computes" for the measured
// seconds (smpi_execute), then reduces the exact reduction's payload (int32, summed) with the
// shim's own calls (dpt_iallreduce_int32s, polled with dpt_collective_test, as the watched
// collective does) or, with "blocking", with MPI_Allreduce, whose algorithm SMPI lets
// --cfg=smpi/allreduce:<name> choose (SimGrid 3.32's MPI_Iallreduce is none of the algorithms
// MPIs use: 142 ms for 252 KB at 64 ranks where the blocking ones take 0.1-1.4 ms, so
// bench/scaling --check replays with "blocking"). Rank 0 prints the mean simulated step and the
// mean reduction within it, in seconds. bench/scaling --check builds and runs it:
//   smpicc -O2 -I../../Sources/MPIShim/include step.c ../../Sources/MPIShim/mpi_shim.c -o step
//   smpirun -np 64 -platform fat-tree-ib.xml -hostfile HOSTS ./step COUNT COMPUTE_S STEPS [blocking]
// (HOSTS: node-0 … node-63, one a line).
#include "mpi_shim.h"
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    int rank, size, local_rank, local_size;
    if (argc < 4 || dpt_init(&rank, &size, &local_rank, &local_size) != 0) return 1;
    size_t count = (size_t)atol(argv[1]);
    double compute = atof(argv[2]);
    int steps = atoi(argv[3]), blocking = argc > 4 && strcmp(argv[4], "blocking") == 0;
    int32_t *payload = calloc(count, sizeof(int32_t));
    for (size_t i = 0; i < count; i++) payload[i] = (int32_t)(i % 7) + rank;
    MPI_Barrier(MPI_COMM_WORLD);
    double start = MPI_Wtime(), reducing = 0;
    for (int s = 0; s < steps; s++) {
        smpi_execute(compute);
        double t = MPI_Wtime();
        if (blocking) {
            MPI_Allreduce(MPI_IN_PLACE, payload, (int)count, MPI_UINT32_T, MPI_SUM, MPI_COMM_WORLD);
        } else {
            int done = 0;
            if (dpt_iallreduce_int32s(payload, count) != 0) return 1;
            while (!done) dpt_collective_test(&done);
        }
        reducing += MPI_Wtime() - t;
    }
    double step = (MPI_Wtime() - start) / steps;
    if (rank == 0) printf("%.9f %.9f\n", step, reducing / steps);
    dpt_finalize();
    free(payload);
    return 0;
}
