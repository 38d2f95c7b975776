import Testing
import TestSupport

/// The launch paths of clusters, for real: a one-node Slurm (sbatch with srun and with mpirun,
/// then a signal before the time limit, requeue and resume) and mpirun over network-namespace
/// hosts. The scripts under tests/cluster/ hold the steps and their checks (see its README);
/// each ends with "PASS ..." or one "FAIL ...: reason" line and cleans up after itself.
@Suite(.serialized)
struct ClusterTests {
    @Test(arguments: ["slurm.sh", "slurm-requeue.sh", "multihost.sh"])
    func clusterScript(_ name: String) throws {
        let script = Repo.root.appendingPathComponent("tests/cluster/" + name).path
        let result = try run(["bash", script], environment: ["DPTRAIN": Repo.dptrain], timeout: 600)
        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains("PASS tests/cluster/\(name)"), "\(result)")
    }
}
