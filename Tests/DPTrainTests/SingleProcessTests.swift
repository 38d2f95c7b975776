import ModelFiles
import Collectives
import Foundation
import Testing
import TestSupport
import Training

/// The communicator seam: the trainer on the single-process communicator (no MPI at all) gives
/// the very weights of the command line, which runs on MPI (a one-rank world without mpirun).
struct SingleProcessTests {
    @Test func singleProcessCommunicatorMatchesTheMPIRun() throws {
        var config = TrainingConfig()
        config.dataDirectory = Repo.data
        config.maxSteps = 20
        config.threads = 2
        config.seed = 4
        config.runDirectory = Repo.scratch("single-comm")
        let trainer = try Trainer(config: config, communicator: SingleProcessCommunicator(), log: { _ in })
        guard case .finished(let summary) = try trainer.train() else {
            Issue.record("the run should finish")
            return
        }
        #expect(summary.steps == 20 && summary.ranks == 1)

        let cli = Repo.scratch("single-cli")
        let result = try dptrain(["train", "--max-steps", "20", "--threads", "2", "--seed", "4", "--run-dir", cli])
        #expect(result.status == 0, "\(result)")
        let ours = try SafeTensors(path: config.runDirectory + "/model.safetensors")
        let theirs = try SafeTensors(path: cli + "/model.safetensors")
        #expect(ours.tensors.map(\.tensor) == theirs.tensors.map(\.tensor))
    }
}
