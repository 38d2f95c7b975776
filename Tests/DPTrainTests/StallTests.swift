import Foundation
import Testing
import TestSupport

/// The stall watchdog under `mpirun`: a rank stopped with SIGSTOP mid-training (as a swapped-out
/// node or a stuck file system would) is named by rank 0 within the warning time; with
/// --stall-timeout the whole job ends, non-zero, with no process left. Rank 0 being late itself
/// (what its checkpoints and evaluation look like to the others) raises no warning.
@Suite(.serialized)
struct StallTests {
    static let warning = 2.0, timeout = 4.0

    /// A job of `ranks` ranks under way (rank 0 has written a checkpoint), with its ranks' pids by rank.
    struct Job {
        let process: RunningProcess
        let dir: String
        let pids: [Int: Int32]

        init(ranks: Int, extra: [String]) throws {
            dir = Repo.scratch("stall")
            process = try RunningProcess(command(["train", "--epochs", "2", "--checkpoint-every", "10", "--stall-warning", "\(StallTests.warning)",
                                                  "--run-dir", dir] + extra, ranks: ranks), environment: Repo.mpiEnvironment)
            var found: [Int: Int32] = [:]
            let dir = dir
            let started = process.waitUntil(timeout: 60) {
                found = Dictionary(rankProcesses(matching: dir).compactMap { pid in mpiRank(of: pid).map { ($0, pid) } }) { a, _ in a }
                let checkpoints = (try? FileManager.default.contentsOfDirectory(atPath: dir + "/checkpoints")) ?? []
                return found.count == ranks && checkpoints.contains { $0.hasPrefix("ckpt-") }
            }
            pids = found
            if !started { teardown() }
            try #require(started, "the job did not get under way: \(process.stderr)")
        }

        /// Whatever happened: no stopped or running rank is left behind.
        func teardown() {
            for pid in pids.values { kill(pid, SIGCONT); kill(pid, SIGKILL) }
            _ = process.wait(timeout: 30)
        }
    }

    @Test(arguments: [2, 3]) func warningNamesTheStoppedRank(ranks: Int) throws {
        let job = try Job(ranks: ranks, extra: [])
        defer { job.teardown() }
        // Rank 0 late by more than the warning (as during a long checkpoint): no alarm.
        kill(job.pids[0]!, SIGSTOP)
        Thread.sleep(forTimeInterval: Self.warning + 1.5)
        kill(job.pids[0]!, SIGCONT)
        #expect(!job.process.waitUntil(timeout: 2) { job.process.stderr.contains("stall") }, "false alarm: \(job.process.stderr)")

        let late = ranks - 1
        let stoppedAt = Date()
        kill(job.pids[late]!, SIGSTOP)
        let named = job.process.waitUntil(timeout: Self.warning + 10) { job.process.stderr.contains("stall") }
        let seconds = Date().timeIntervalSince(stoppedAt)
        let stderr = job.process.stderr
        #expect(named, "no stall warning: \(stderr)")
        #expect(seconds < Self.warning + 3, "the warning took \(seconds)s")
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count - 1)
        let host = String(cString: name)
        let line = stderr.split(separator: "\n").first { $0.contains("stall") }.map(String.init) ?? ""
        #expect(line.hasPrefix("dptrain: warning: stall: step "), "\(line)")
        #expect(line.contains("rank \(late) (\(host))"), "\(line)")
        for other in 1..<late { #expect(!line.contains("rank \(other) ("), "\(line)") }
        print("np=\(ranks): stall warning \(String(format: "%.2f", seconds))s after SIGSTOP: \(line)")
        // Still only waiting: the job goes on once the rank continues.
        kill(job.pids[late]!, SIGCONT)
        #expect(job.process.isRunning)
    }

    /// Rank 0 stopped used to hang the job forever (the watchdog lived on rank 0): every rank
    /// now hears from rank 0 while it waits, and rank 1 ends the job naming it.
    @Test func stoppedRankZeroEndsTheJob() throws {
        let job = try Job(ranks: 2, extra: ["--stall-timeout", "\(Self.timeout)"])
        defer { job.teardown() }
        let stoppedAt = Date()
        kill(job.pids[0]!, SIGSTOP)
        let result = job.process.wait(timeout: Self.timeout + 30)
        let seconds = Date().timeIntervalSince(stoppedAt)
        #expect(!result.timedOut && result.status != 0, "\(result)")
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count - 1)
        let lines = result.stderrLines.filter { $0.contains("error: stall:") }
        #expect(lines.count == 1 && lines[0].hasPrefix("dptrain: rank 1: error: stall: step ") && lines[0].contains("rank 0 (\(String(cString: name)))"), "\(result)")
        #expect(seconds < Self.timeout + 6, "the job took \(seconds)s to end")
        var left: [Int32] = []
        let deadline = Date().addingTimeInterval(5)
        repeat {
            left = processes(matching: job.dir)
            if left.isEmpty { break }
            Thread.sleep(forTimeInterval: 0.1)
        } while Date() < deadline
        #expect(left.isEmpty, "processes left: \(left)")
        print("np=2: rank 0 stopped: job ended \(String(format: "%.2f", seconds))s after SIGSTOP (timeout \(Self.timeout)s), status \(result.status)")
    }

    @Test(arguments: [2, 3]) func timeoutEndsTheJob(ranks: Int) throws {
        let job = try Job(ranks: ranks, extra: ["--stall-timeout", "\(Self.timeout)"])
        defer { job.teardown() }
        let late = ranks - 1
        let stoppedAt = Date()
        kill(job.pids[late]!, SIGSTOP)
        let result = job.process.wait(timeout: Self.timeout + 30)
        let seconds = Date().timeIntervalSince(stoppedAt)
        #expect(!result.timedOut && result.status != 0, "\(result)")
        let line = result.stderrLines.first { $0.contains("error: stall:") }.map(String.init) ?? ""
        #expect(line.hasPrefix("dptrain: rank 0: error: stall: step ") && line.contains("rank \(late) ("), "\(result)")
        #expect(seconds < Self.timeout + 10, "the job took \(seconds)s to end")
        var left: [Int32] = []
        let deadline = Date().addingTimeInterval(5)
        repeat {
            left = processes(matching: job.dir)
            if left.isEmpty { break }
            Thread.sleep(forTimeInterval: 0.1)
        } while Date() < deadline
        #expect(left.isEmpty, "processes left: \(left)")
        print("np=\(ranks): job ended \(String(format: "%.2f", seconds))s after SIGSTOP (timeout \(Self.timeout)s), status \(result.status)")
    }
}
