import Foundation
import ModelFiles
import Testing
import TestSupport

/// The faults an adversarial run found (issue 15), each as the user met it: two runs in one
/// directory, settings changed on resume, a run directory whose only checkpoint is corrupt,
/// files with a flipped byte, input that was silently ignored, and unhelpful messages.
@Suite(.serialized)
struct FaultTests {
    static var host: String {
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count - 1)
        return String(cString: name)
    }

    static func checkpoints(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir + "/checkpoints")) ?? []).filter { $0.hasPrefix("ckpt-") }.sorted()
    }

    static func metadata(_ path: String) throws -> [String: String] { try SafeTensors.metadata(atPath: path) }

    /// Two runs in one directory used to replace each other's checkpoints and share one event
    /// file. The second is refused naming the holder; the holder's kill -9 leaves no lock behind.
    @Test func aRunDirectoryBelongsToOneRun() throws {
        let dir = Repo.scratch("twin")
        let first = try RunningProcess(command(["train", "--max-steps", "100000", "--checkpoint-every", "20", "--seed", "1", "--run-dir", dir], ranks: nil))
        defer { kill(first.pid, SIGKILL); _ = first.wait(timeout: 10) }
        #expect(first.waitUntil(timeout: 60) { !Self.checkpoints(dir).isEmpty }, "the first run wrote no checkpoint: \(first.stderr)")

        let second = try dptrain(["train", "--max-steps", "200", "--checkpoint-every", "20", "--seed", "2", "--run-dir", dir])
        #expect(second.status == 1 && second.stderrLines.count == 1, "\(second)")
        let line = second.stderr
        #expect(line.hasPrefix("dptrain: error: \(dir): is in use by another run") && line.contains("host \(Self.host) pid \(first.pid)"), "\(line)")
        #expect(first.isRunning, "the first run must go on untouched")
        let events = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains("tfevents") }
        #expect(events.count == 1, "one event file, the first run's: \(events)")

        kill(first.pid, SIGKILL)  // the lock file stays, the lock does not
        _ = first.wait(timeout: 10)
        let newest = Self.checkpoints(dir).last.flatMap { Int($0.dropFirst(5).prefix(9)) } ?? 0
        let resumed = try dptrain(["train", "--max-steps", "\(newest + 3)", "--resume", "auto", "--run-dir", dir])
        #expect(resumed.status == 0 && resumed.stdout.contains("resumed from ckpt-"), "\(resumed)")
        let holder = try String(contentsOfFile: dir + "/dptrain.lock", encoding: .utf8)
        #expect(holder.hasPrefix("host \(Self.host) pid ") && !holder.contains("pid \(first.pid)\n"), "\(holder)")
    }

    /// Every setting changed on resume is said and recorded (the list used to be kept by hand
    /// and miss these), the new checkpoint records the new values, and the learning rates
    /// logged for the steps before the resume stay the ones used.
    @Test func resumeReportsEveryChangeAndKeepsWhatWasLogged() throws {
        let dir = Repo.scratch("changes")
        let first = try dptrain(["train", "--lr-schedule", "exponential", "--lr-decay-rate", "0.9", "--max-steps", "28", "--run-dir", dir])
        #expect(first.status == 0, "\(first)")
        let before = try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8)
        let usedRates = try Self.learningRates(before)
        #expect(usedRates.count == 28)

        let resumed = try dptrain(["train", "--lr-schedule", "exponential", "--lr-decay-rate", "0.5", "--threads", "1", "--log-every", "7",
                                   "--stall-warning", "30", "--keep", "2", "--max-steps", "40", "--resume", "auto", "--run-dir", dir])
        #expect(resumed.status == 0, "\(resumed)")
        let expected = [("--lr-decay-rate", "0.9", "0.5"), ("--threads", "none", "1"), ("--log-every", "50", "7"),
                        ("--stall-warning", "60", "30"), ("--keep", "3", "2"), ("--max-steps", "28", "40")]
        for (flag, old, new) in expected {
            #expect(resumed.stdout.contains("note: \(flag) changed on resume: \(old) -> \(new)"), "no note for \(flag): \(resumed.stdout)")
        }
        let changes = try runSummary(dir)["resume_changes"] as? [[String: String]] ?? []
        #expect(Set(changes.compactMap { $0["setting"] }) == Set(expected.map(\.0)), "\(changes)")

        let config = try JSONSerialization.jsonObject(with: Data(try Self.metadata(dir + "/checkpoints/ckpt-000000040.safetensors")["config"]!.utf8)) as! [String: Any]
        #expect(config["lrDecayRate"] as? Double == 0.5 && config["threads"] as? Int == 1, "\(config)")

        let rates = try Self.learningRates(try String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8))
        #expect(rates.count == 40)
        #expect(Array(rates.prefix(28)) == usedRates, "the rates of the steps before the resume were rewritten")
        #expect(abs(rates[28] - 0.01 * pow(0.5, 28.0 / 600)) < 1e-8 && abs(usedRates[27] - 0.01 * pow(0.9, 27.0 / 600)) < 1e-8, "\(rates[26...29])")
    }

    static func learningRates(_ jsonl: String) throws -> [Double] {
        try jsonl.split(separator: "\n").flatMap { line -> [Double] in
            (try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])?["learning_rates"] as? [Double] ?? []
        }
    }

    /// A flipped byte is refused by evaluate and predict as by --resume; with no checkpoint that
    /// verifies, --resume auto starts fresh as documented (it used to refuse, telling the user to
    /// pass --resume auto); model flags are refused for a file that records its architecture.
    @Test func corruptFilesAreRefusedAndResumeAutoStartsFresh() throws {
        let dir = Repo.scratch("corrupt")
        #expect(try dptrain(["train", "--max-steps", "5", "--run-dir", dir]).status == 0)
        let checkpoint = dir + "/checkpoints/ckpt-000000005.safetensors", model = dir + "/model.safetensors"
        for file in [checkpoint, model] {
            var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
            bytes[bytes.count - 100] ^= 0x01
            try Data(bytes).write(to: URL(fileURLWithPath: file))
            for arguments in [["evaluate", "--model", file], ["predict", "--model", file, "--images", Repo.data + "/t10k-images-idx3-ubyte.gz"]] {
                let refused = try dptrain(arguments)
                #expect(refused.status == 1 && refused.stderrLines.count == 1 && refused.stdout.isEmpty, "\(refused)")
                #expect(refused.stderr == "dptrain: error: \(file): corrupt: the tensor data does not match its SHA-256\n", "\(refused)")
            }
        }
        let fresh = try dptrain(["train", "--max-steps", "3", "--resume", "auto", "--run-dir", dir])
        #expect(fresh.status == 0, "\(fresh)")
        #expect(fresh.stdout.contains("skipping checkpoint: \(checkpoint): corrupt") && fresh.stdout.contains("verifies; starting fresh"), "\(fresh.stdout)")
        #expect(Self.checkpoints(dir) == ["ckpt-000000003.safetensors", "ckpt-000000005.safetensors"])

        let flags = try dptrain(["evaluate", "--model", model, "--filters", "8,16"])
        #expect(flags.status == 1 && flags.stderr == "dptrain: error: --filters: does not apply: \(model) records its architecture\n", "\(flags)")
    }

    /// A diverging run used to crash (an arithmetic overflow summing the huge losses); it ends
    /// with one line naming the step and the rate.
    @Test func divergenceNamesTheStepAndTheRate() throws {
        let diverged = try dptrain(["train", "--lr", "1000", "--max-steps", "20", "--run-dir", Repo.scratch("diverged")])
        #expect(diverged.status == 1 && diverged.stderrLines.count == 1, "\(diverged)")
        let line = diverged.stderr
        #expect(line.hasPrefix("dptrain: error: step ") && line.contains("(learning rate 1000.0)") && line.contains("diverged (lower --lr)"), "\(line)")
    }

    /// Headers whose sizes multiply past Int used to crash the readers (an arithmetic-overflow
    /// trap; found by scripts/fuzz, whose seeds keep the IDX cases): one line instead.
    @Test func overflowingHeadersAreRefusedNotCrashed() throws {
        for seed in ["idx-overflowing-dims-idx3-ubyte", "idx-zero-and-overflowing-dims-idx3-ubyte"] {
            let images = Repo.root.appendingPathComponent("Tests/Fuzz/seeds/" + seed).path
            let result = try dptrain(["predict", "--model", Repo.root.appendingPathComponent("Tests/Fuzz/seeds/tiny-model.safetensors").path, "--images", images])
            #expect(result.status == 1 && result.stderrLines.count == 1 && result.stderr.hasPrefix("dptrain: error: \(images): "), "\(result)")
        }
        let dir = Repo.scratch("overflow")
        for (name, shape, end) in [("huge", "[4294967296,4294967296]", 4), ("empty", "[4294967296,4294967296,0]", 0)] {
            var header = Array("{\"t\":{\"dtype\":\"F32\",\"shape\":\(shape),\"data_offsets\":[0,\(end)]}}".utf8)
            while header.count % 8 != 0 { header.append(0x20) }
            let file = "\(dir)/\(name).safetensors"
            try Data(withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header + [UInt8](repeating: 0, count: end)).write(to: URL(fileURLWithPath: file))
            let result = try dptrain(["evaluate", "--model", file])
            #expect(result.status == 1 && result.stderrLines.count == 1 && result.stderr.hasPrefix("dptrain: error: \(file): "), "\(result)")
        }
    }

    /// Input that used to be ignored or answered with Foundation's error codes.
    @Test func plainMessagesForWhatWasSilent() throws {
        let kernels = try run([Repo.dptrain, "summary"], environment: ["DPTRAIN_KERNELS": "bogus"])
        #expect(kernels.status == 1 && kernels.stderrLines.count == 1, "\(kernels)")
        #expect(kernels.stderr.hasPrefix("dptrain: error: DPTRAIN_KERNELS: 'bogus' is not a kernel path this CPU runs; valid: ") && kernels.stderr.contains("im2col"), "\(kernels)")
        let winograd = try run([Repo.dptrain, "summary"], environment: ["DPTRAIN_WINOGRAD": "no"])
        #expect(winograd.status == 1 && winograd.stderr == "dptrain: error: DPTRAIN_WINOGRAD: 'no' is not 0 (direct conv kernels only) or 1 (Winograd's where they fit, the default)\n", "\(winograd)")

        let file = Repo.scratch("file-run-dir") + "/notes.txt"
        try "mine".write(toFile: file, atomically: true, encoding: .utf8)
        let isFile = try dptrain(["train", "--max-steps", "1", "--run-dir", file])
        #expect(isFile.status == 1 && isFile.stderr == "dptrain: error: \(file): is a file, not a directory (--run-dir \(file))\n", "\(isFile)")
        #expect(try String(contentsOfFile: file, encoding: .utf8) == "mine")

        let threads = try dptrain(["train", "--threads", "1000", "--max-steps", "1", "--run-dir", Repo.scratch("threads-cap")])
        #expect(threads.status == 0 && threads.stdout.contains("note: --threads 1000: 10 run per rank"), "\(threads)")

        // Under mpirun an argument error is one line, from rank 0, not one per rank.
        let twice = try dptrain(["train", "--epochs", "0"], ranks: 2)
        let lines = twice.stderrLines.filter { $0.hasPrefix("dptrain:") }
        #expect(twice.status != 0 && lines == ["dptrain: error: --epochs: must be at least 1, got 0"], "\(twice)")
    }
}

/// SIGTERM to mpirun, what users' `kill` and many schedulers send. Open MPI 4.1's mpirun cannot
/// forward it: it sends the ranks SIGTERM `odls_base_sigkill_timeout` (1 s) later,
/// then SIGKILL as long again after that, and exits 1 whatever the ranks return. The ranks take
/// the stop path in that second: rank 0 writes a checkpoint and says so, and the run resumes.
@Suite(.serialized)
struct LauncherSignalTests {
    @Test func sigtermToMpirunLeavesACheckpoint() throws {
        let dir = Repo.scratch("sigterm")
        let job = try RunningProcess(command(["train", "--epochs", "2", "--checkpoint-every", "20", "--run-dir", dir], ranks: 2), environment: Repo.mpiEnvironment)
        #expect(job.waitUntil(timeout: 60) { !FaultTests.checkpoints(dir).isEmpty }, "no checkpoint: \(job.stderr)")
        let before = FaultTests.checkpoints(dir)
        let sent = Date()
        kill(job.pid, SIGTERM)
        let stopped = job.wait(timeout: 30)
        let seconds = Date().timeIntervalSince(sent)
        #expect(stopped.status == 1 && !stopped.timedOut, "Open MPI 4.1's mpirun exits 1 after a SIGTERM: \(stopped)")
        #expect(stopped.stdout.contains("stopping on a signal: checkpoint"), "\(stopped)")
        #expect(!stopped.stderr.contains("error"), "\(stopped.stderr)")
        let written = FaultTests.checkpoints(dir).filter { !before.contains($0) }
        #expect(written.count >= 1, "no checkpoint written on the stop")
        #expect(seconds < 6, "mpirun took \(seconds)s")
        print("SIGTERM to mpirun: status \(stopped.status) after \(String(format: "%.2f", seconds))s, checkpoint \(written.last ?? "none")")
        let step = written.last.flatMap { Int($0.dropFirst(5).prefix(9)) } ?? 0
        let resumed = try dptrain(["train", "--epochs", "2", "--checkpoint-every", "20", "--max-steps", "\(step + 2)", "--resume", "auto", "--run-dir", dir], ranks: 2)
        #expect(resumed.status == 0 && resumed.stdout.contains("resumed from \(written.last ?? "?")"), "\(resumed)")
    }
}
