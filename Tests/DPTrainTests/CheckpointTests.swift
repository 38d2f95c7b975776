import ModelFiles
import Foundation
import Testing
import TestSupport
import Training

/// Checkpoints under `mpirun -np 2`: killed or signalled runs resume to the very weights of an
/// uninterrupted run, corrupt checkpoints are refused or skipped, and Python reads the files.
@Suite(.serialized)
struct CheckpointTests {
    /// 2 epochs of 120 steps (80% of the training set held out), a checkpoint every 25 steps.
    static let arguments = ["train", "--epochs", "2", "--validation-split", "0.8", "--seed", "9", "--checkpoint-every", "25"]

    /// The uninterrupted run every interrupted one must reproduce, computed once.
    static let reference: String = {
        let dir = Repo.scratch("ckpt-reference")
        let result = try! dptrain(arguments + ["--run-dir", dir], ranks: 2)
        precondition(result.status == 0, "reference run failed: \(result)")
        return dir
    }()

    static func tensorBytes(_ runDir: String) throws -> [String: [UInt8]] {
        let file = try SafeTensors(path: runDir + "/model.safetensors")
        return Dictionary(uniqueKeysWithValues: file.tensors.map { ($0.name, $0.tensor.bytes) })
    }

    static func checkpoints(_ runDir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: runDir + "/checkpoints")) ?? [])
            .filter { $0.hasPrefix("ckpt-") && $0.hasSuffix(".safetensors") }.sorted()
    }

    /// Resumes `runDir` with `--resume auto` and checks the result equals the reference bit for bit.
    static func resumeAndCompare(_ runDir: String, extra: [String] = []) throws -> ProcessResult {
        let resumed = try dptrain(arguments + ["--run-dir", runDir, "--resume", "auto"] + extra, ranks: 2)
        #expect(resumed.status == 0, "\(resumed)")
        #expect(resumed.stdout.contains("resumed from ckpt-"), "\(resumed.stdout)")
        #expect(try tensorBytes(runDir) == tensorBytes(reference), "resumed weights differ from the uninterrupted run")
        let rows = try String(contentsOfFile: runDir + "/metrics.csv", encoding: .utf8).split(separator: "\n")
        #expect(rows.count == 3, "metrics.csv should hold a header and one row per epoch: \(rows)")
        return resumed
    }

    /// Newest checkpoint's global step, or 0.
    static func newestStep(_ runDir: String) -> Int {
        checkpoints(runDir).last.flatMap { Int($0.dropFirst(5).prefix(9)) } ?? 0
    }

    /// Starts the job and kills it (SIGKILL to every rank, as when a node dies) soon after a
    /// checkpoint at or past `step` exists.
    static func killedRun(afterStep step: Int) throws -> String {
        let dir = Repo.scratch("ckpt-kill")
        let job = try RunningProcess(command(arguments + ["--run-dir", dir], ranks: 2), environment: Repo.mpiEnvironment)
        #expect(job.waitUntil(timeout: 120) { newestStep(dir) >= step }, "no checkpoint at step \(step)")
        Thread.sleep(forTimeInterval: 0.2)  // a few steps past the checkpoint
        let ranks = rankProcesses(matching: dir)
        ranks.forEach { kill($0, SIGKILL) }
        let killed = job.wait(timeout: 30)
        #expect(killed.status != 0, "\(killed)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/summary.json"), "the run finished before it was killed")
        return dir
    }

    @Test(arguments: [25, 150])  // in the first epoch, and in the second after an epoch-end checkpoint
    func sigkillMidEpochThenResumeIsBitExact(step: Int) throws {
        _ = Self.reference
        _ = try Self.resumeAndCompare(try Self.killedRun(afterStep: step))
    }

    @Test func sigusr1CheckpointsAndExitsWithTheDocumentedStatus() throws {
        _ = Self.reference
        let dir = Repo.scratch("ckpt-usr1")
        let job = try RunningProcess(command(Self.arguments + ["--run-dir", dir], ranks: 2), environment: Repo.mpiEnvironment)
        #expect(job.waitUntil(timeout: 120) { Self.newestStep(dir) >= 25 })
        let before = Self.checkpoints(dir)
        kill(job.pid, SIGUSR1)  // mpirun forwards it to the ranks
        let stopped = job.wait(timeout: 30)
        #expect(stopped.status == StopSignal.exitStatus, "\(stopped)")
        #expect(stopped.stdout.contains("stopping on a signal: checkpoint"), "\(stopped.stdout)")
        #expect(Self.checkpoints(dir) != before, "a new checkpoint must be written on the signal")
        _ = try Self.resumeAndCompare(dir)
    }

    @Test(arguments: ["truncated", "flipped byte", "lying header"])
    func corruptNewestCheckpointIsRefusedAndSkipped(damage: String) throws {
        _ = Self.reference
        let dir = try Self.killedRun(afterStep: 50)
        let names = Self.checkpoints(dir)
        #expect(names.count >= 2)
        let newest = dir + "/checkpoints/" + names.last!
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: newest)))
        switch damage {
        case "truncated": bytes.removeLast(1000)
        case "flipped byte": bytes[bytes.count - 5000] ^= 0x01
        default:  // shift every data offset in the header by 4 bytes: same length, wrong places
            var text = String(decoding: bytes, as: UTF8.self)
            text = text.replacingOccurrences(of: "\"data_offsets\":[0,", with: "\"data_offsets\":[4,")
            bytes = Array(text.utf8)
        }
        try Data(bytes).write(to: URL(fileURLWithPath: newest))

        let refused = try dptrain(Self.arguments + ["--run-dir", Repo.scratch("refused"), "--resume", newest], ranks: 2)
        #expect(refused.status != 0, "\(refused)")
        #expect(refused.stderrLines.filter { $0.contains("error") }.count == 1 && refused.stderr.contains(newest), "\(refused)")

        let resumed = try Self.resumeAndCompare(dir)
        #expect(resumed.stdout.contains("skipping checkpoint") && resumed.stdout.contains(names.last!), "\(resumed.stdout)")
    }

    @Test func checkpointOfAnotherModelIsRefusedAndOtherRankCountsAreAllowed() throws {
        _ = Self.reference
        let dir = try Self.killedRun(afterStep: 25)
        let other = try dptrain(Self.arguments + ["--run-dir", dir, "--resume", "auto", "--filters", "16,32"])
        #expect(other.status != 0 && other.stderr.contains("different architecture"), "\(other)")
        let seed = try dptrain(Self.arguments.map { $0 == "9" ? "10" : $0 } + ["--run-dir", dir, "--resume", "auto"])
        #expect(seed.status != 0 && seed.stderr.contains("--seed"), "\(seed)")
        let single = try dptrain(Self.arguments + ["--run-dir", dir, "--resume", "auto"])
        #expect(single.status == 0 && single.stdout.contains("written by 2 ranks and resumes on 1"), "\(single)")
    }

    /// The files are plain safetensors: Python's reader loads a checkpoint, and a NumPy forward
    /// pass written independently of dptrain predicts the same classes as `dptrain predict`.
    @Test func pythonReadsCheckpointsAndAgreesWithPredict() throws {
        let checkpoint = Self.reference + "/checkpoints/" + Self.checkpoints(Self.reference).last!
        let python = Repo.root.appendingPathComponent(".venv-test/bin/python").path
        #expect(FileManager.default.isExecutableFile(atPath: python), "run scripts/setup --test to create .venv-test")
        let images = Repo.data + "/t10k-images-idx3-ubyte.gz"
        let numpy = try run([python, Repo.root.appendingPathComponent("tests/python/numpy_forward.py").path, checkpoint, images])
        #expect(numpy.status == 0, "\(numpy)")
        let predicted = try dptrain(["predict", "--model", checkpoint, "--images", images,
                                     "--labels", Repo.data + "/t10k-labels-idx1-ubyte.gz"])
        #expect(predicted.status == 0, "\(predicted)")
        let ours = predicted.stdout.split(separator: "\n").prefix(10_000)
        let theirs = numpy.stdout.split(separator: "\n")
        #expect(theirs.count == 10_000)
        let disagreements = zip(ours, theirs).filter { $0 != $1 }.count
        // Different summation orders may flip a near-tie; more than a handful would be a bug.
        #expect(disagreements <= 5, "\(disagreements) of 10,000 predictions differ")
        #expect(predicted.stdout.contains("accuracy: 0.") && predicted.stdout.contains("confusion matrix"), "\(predicted.stdout.suffix(800))")
    }

    /// The exact reduction carries a run across rank counts: killed at np=2, resumed at np=3, it
    /// ends with the weights of an uninterrupted single process, bit for bit.
    @Test func killedAtTwoRanksResumedAtThreeEqualsOneProcess() throws {
        let dir = try Self.killedRun(afterStep: 25)
        let resumed = try dptrain(Self.arguments + ["--run-dir", dir, "--resume", "auto"], ranks: 3)
        #expect(resumed.status == 0 && resumed.stdout.contains("written by 2 ranks and resumes on 3"), "\(resumed)")
        let single = Repo.scratch("ckpt-single")
        #expect(try dptrain(Self.arguments + ["--run-dir", single]).status == 0)
        #expect(try Self.tensorBytes(dir) == Self.tensorBytes(single), "np=2 -> np=3 differs from an uninterrupted np=1 run")
    }

    /// A run cut short by --max-steps checkpoints where it stopped: resuming it with more steps
    /// gives the run that had those steps from the start, also with momentum, whose velocity is
    /// the optimizer state the checkpoint must carry.
    @Test(arguments: [[], ["--momentum", "0.9"], ["--optimizer", "adam"], ["--optimizer", "rmsprop", "--momentum", "0.5", "--centered"]])
    func maxStepsRunsResumeWhereTheyStopped(extra: [String]) throws {
        let common = ["train", "--validation-split", "0.8", "--seed", "2"] + extra
        let straight = Repo.scratch("steps-straight"), cut = Repo.scratch("steps-cut")
        #expect(try dptrain(common + ["--max-steps", "150", "--run-dir", straight]).status == 0)
        #expect(try dptrain(common + ["--max-steps", "70", "--run-dir", cut]).status == 0)
        if extra == ["--momentum", "0.9"] {
            let checkpoint = try SafeTensors(path: cut + "/checkpoints/ckpt-000000070.safetensors")
            #expect(checkpoint["optimizer/conv2d/kernel/velocity"]?.shape == [5, 5, 1, 32])
        }
        let resumed = try dptrain(common + ["--max-steps", "150", "--run-dir", cut, "--resume", "auto"])
        #expect(resumed.stdout.contains("resumed from ckpt-000000070.safetensors at epoch 1, step 70"), "\(resumed)")
        #expect(try Self.tensorBytes(cut) == Self.tensorBytes(straight))
    }
}
