import Foundation
import Testing
import TestSupport
import Reports

/// The Chrome trace: which steps it keeps, the allreduce packing, and the file as Python's
/// json reads it (tests/python/trace_check.py checks the Trace Event Format's rules).
@Suite struct TraceTests {
    static let phaseNames = ["data", "forward", "backward", "reduce_wait", "reduce", "update"]

    @Test func theWindowKeepsTheFirstStepsThenEveryMthUpToTheLimit() {
        let window = TraceWindow(first: 3, every: 10, limit: 5)
        var trace = TraceWriter(path: "/dev/null", ranks: 1, window: window)
        var asked: [Int] = []
        for step in 1...100 where trace.records(step: step) {
            asked.append(step)
            trace.append(rank: 0, step: step, phases: [TracePhase("data", start: Double(step), duration: 0.001)])
        }
        #expect(asked == [1, 2, 3, 10, 20])
        #expect(trace.keptSteps == [1, 2, 3, 10, 20])
        // Decided by the step alone: a rank that keeps no trace gets the same answer.
        #expect((1...100).filter(window.records) == [1, 2, 3, 10, 20])
        #expect(TraceWindow().records(step: 48_000) && !TraceWindow().records(step: 48_100))
    }

    @Test func phasesSurviveTheAllreducePacking() {
        let ranks = 3
        let slot = 2 * Self.phaseNames.count
        // Each rank fills its own slot of a zeroed buffer; the sum over ranks is every slot.
        var summed = [Double](repeating: 0, count: ranks * slot)
        for rank in 0..<ranks {
            let phases = Self.phaseNames.enumerated().map { TracePhase($1, start: Double(rank) + Double($0), duration: 0.5) }
            let packed = TracePhase.pack(phases)
            for i in 0..<slot { summed[rank * slot + i] += packed[i] }
        }
        let rank2 = TracePhase.unpack(summed[(2 * slot)..<(3 * slot)], names: Self.phaseNames)
        #expect(rank2.map(\.name) == Self.phaseNames)
        #expect(rank2.map(\.start) == [2, 3, 4, 5, 6, 7])
        let steps = TracePhase.consecutive(from: 10, [("data", 0.5), ("forward", 1), ("backward", 2)])
        #expect(steps.map(\.start) == [10, 10.5, 11.5])
        #expect(steps.map(\.duration) == [0.5, 1, 2])
    }

    /// Three ranks, 250 steps, kept: the first 5 and every 50th. One track per rank, named.
    @Test func theTraceParsesWithATrackPerRank() throws {
        let path = Repo.scratch("trace") + "/timeline.json"
        var trace = TraceWriter(path: path, ranks: 3, window: TraceWindow(first: 5, every: 50, limit: 100))
        let stepSeconds = 0.08
        for step in 1...250 where trace.records(step: step) {
            for rank in 0..<3 {
                let durations = Self.phaseNames.enumerated().map { index, name in
                    (name, name == "reduce_wait" ? 0.002 * Double(rank) : 0.01 + 0.001 * Double(index))
                }
                trace.append(rank: rank, step: step, phases: TracePhase.consecutive(from: Double(step - 1) * stepSeconds, durations))
            }
        }
        try trace.write()

        let python = Repo.root.appendingPathComponent(".venv-test/bin/python").path
        let result = try run([python, Repo.root.appendingPathComponent("tests/python/trace_check.py").path, path])
        try #require(result.status == 0, "\(result)")
        let summary = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(summary["processes"] as? [String: String] == ["0": "rank 0", "1": "rank 1", "2": "rank 2"])
        #expect(summary["tracks"] as? [String: [Int]] == ["0": [0], "1": [0], "2": [0]])
        #expect(summary["steps"] as? [Int] == [1, 2, 3, 4, 5, 50, 100, 150, 200, 250])
        #expect(summary["phases"] as? [String] == Self.phaseNames.sorted())
        // 3 metadata events per rank, then per kept step and rank a step event and six phases.
        #expect(summary["events"] as? Int == 3 * 3 + 10 * 3 * 7)
    }

    @Test func anUnwritablePathIsNamed() throws {
        let path = Repo.scratch("trace-bad") + "/no/such/dir/timeline.json"
        let trace = TraceWriter(path: path, ranks: 1)
        #expect {
            try trace.write()
        } throws: { error in "\(error)".hasPrefix(path + ": ") }
    }
}
