import Foundation
import ModelFiles
import Testing
import TestSupport

/// The run directory as users reuse it: a fresh start never mixes with an earlier run,
/// a resume says what it changed, and the summary records what ran.
@Suite(.serialized)
struct RunDirectoryTests {
    static func checkpoints(_ runDir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: runDir + "/checkpoints")) ?? []).filter { $0.hasSuffix(".safetensors") }.sorted()
    }

    @Test func freshRunInAUsedDirectoryIsRefusedUnlessOverwritten() throws {
        let dir = Repo.scratch("reused")
        #expect(try dptrain(["train", "--max-steps", "30", "--checkpoint-every", "10", "--run-dir", dir]).status == 0)
        let before = Self.checkpoints(dir)
        let metrics = try String(contentsOfFile: dir + "/metrics.csv", encoding: .utf8)

        let refused = try dptrain(["train", "--max-steps", "5", "--lr", "0.05", "--run-dir", dir])
        #expect(refused.status != 0 && refused.stderrLines.count == 1, "\(refused)")
        #expect(refused.stderr.contains(dir) && refused.stderr.contains("--resume") && refused.stderr.contains("--overwrite"), "\(refused)")
        #expect(try Self.checkpoints(dir) == before && String(contentsOfFile: dir + "/metrics.csv", encoding: .utf8) == metrics)

        let fresh = try dptrain(["train", "--max-steps", "5", "--lr", "0.05", "--overwrite", "--run-dir", dir])
        #expect(fresh.status == 0, "\(fresh)")
        #expect(Self.checkpoints(dir) == ["ckpt-000000005.safetensors"], "the new run's checkpoint survives, the old ones are gone")
        let resumed = try dptrain(["train", "--max-steps", "8", "--lr", "0.05", "--resume", "auto", "--run-dir", dir])
        #expect(resumed.stdout.contains("resumed from ckpt-000000005.safetensors"), "\(resumed)")
    }

    /// A checkpoint of another run in the same directory is never pruned by this one.
    /// A run directory named by one letter, relative to where the user stands (it crashed in
    /// Foundation's path handling).
    @Test func aOneLetterRelativeRunDirectoryIsCreated() throws {
        let cwd = Repo.scratch("one-letter")
        let run = try RunningProcess([Repo.dptrain, "train", "--max-steps", "1", "--run-dir", "a"], directory: cwd).wait(timeout: 120)
        #expect(run.status == 0, "\(run)")
        #expect(FileManager.default.fileExists(atPath: cwd + "/a/model.safetensors"))
    }

    @Test func onlyTheRunsOwnCheckpointsArePruned() throws {
        let first = Repo.scratch("first"), second = Repo.scratch("second")
        #expect(try dptrain(["train", "--max-steps", "30", "--checkpoint-every", "10", "--run-dir", first]).status == 0)
        #expect(try dptrain(["train", "--max-steps", "40", "--seed", "2", "--run-dir", second]).status == 0)
        try FileManager.default.copyItem(atPath: second + "/checkpoints/ckpt-000000040.safetensors", toPath: first + "/checkpoints/ckpt-000000040.safetensors")
        let resumed = try dptrain(["train", "--max-steps", "44", "--seed", "2", "--checkpoint-every", "1", "--keep", "1", "--resume", "auto", "--run-dir", first])
        #expect(resumed.status == 0 && resumed.stdout.contains("resumed from ckpt-000000040"), "\(resumed)")
        #expect(Self.checkpoints(first) == ["ckpt-000000010.safetensors", "ckpt-000000020.safetensors", "ckpt-000000030.safetensors", "ckpt-000000044.safetensors"])
    }

    @Test func resumingWithChangedSettingsSaysSoAndRecordsIt() throws {
        let dir = Repo.scratch("changed")
        #expect(try dptrain(["train", "--max-steps", "20", "--momentum", "0.9", "--run-dir", dir]).status == 0)
        let resumed = try dptrain(["train", "--max-steps", "30", "--lr", "0.02", "--momentum", "0.8", "--resume", "auto", "--run-dir", dir])
        #expect(resumed.status == 0, "\(resumed)")
        for line in ["note: --lr changed on resume: 0.01 -> 0.02", "note: --max-steps changed on resume: 20 -> 30", "note: --momentum changed on resume: 0.9 -> 0.8"] {
            #expect(resumed.stdout.contains(line), "missing '\(line)' in \(resumed.stdout)")
        }
        let changes = try runSummary(dir)["resume_changes"] as? [[String: String]]
        #expect(changes?.contains { $0 == ["setting": "--lr", "old": "0.01", "new": "0.02"] } == true, "\(String(describing: changes))")
        #expect(changes?.count == 3)
        // Momentum state cannot appear from nowhere: plain SGD cannot resume as momentum SGD.
        let plain = Repo.scratch("plain")
        #expect(try dptrain(["train", "--max-steps", "5", "--run-dir", plain]).status == 0)
        let refused = try dptrain(["train", "--max-steps", "10", "--momentum", "0.9", "--resume", "auto", "--run-dir", plain])
        #expect(refused.status != 0 && refused.stderrLines.count == 1 && refused.stderr.contains("momentum"), "\(refused)")
    }

    @Test func summaryRecordsTheThreadsThatRan() throws {
        let dir = Repo.scratch("threads")
        #expect(try dptrain(["train", "--threads", "4", "--batch-size", "20", "--max-steps", "2", "--run-dir", dir]).status == 0)
        #expect(try runSummary(dir)["threads"] as? Int == 2, "a batch of 2 shards runs on 2 workers, not the 4 asked for")
        let float = Repo.scratch("threads-float")
        #expect(try dptrain(["train", "--reduction", "float", "--threads", "4", "--batch-size", "3", "--max-steps", "2", "--run-dir", float]).status == 0)
        #expect(try runSummary(float)["threads"] as? Int == 3, "a batch of 3 runs on 3 workers, not the 4 asked for")
    }
}
