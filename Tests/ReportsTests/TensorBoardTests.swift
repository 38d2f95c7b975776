import Foundation
import Testing
import TestSupport
import Reports

/// The real TensorBoard (from PyPI, in .venv-test) serves what the writer wrote, over HTTP on
/// loopback, through tests/python/tensorboard_scalars.py.
@Suite(.serialized) struct TensorBoardTests {
    static let python = Repo.root.appendingPathComponent(".venv-test/bin/python").path

    /// {tag: [(step, value)]} as TensorBoard serves it; `loadFast` picks its loader: "false" the
    /// Python one, "true" the Rust data server.
    static func served(_ directory: String, tags: [String], loadFast: String) throws -> [String: [(Int, Double)]] {
        #expect(FileManager.default.isExecutableFile(atPath: python), "run scripts/setup --test to create .venv-test")
        let helper = Repo.root.appendingPathComponent("tests/python/tensorboard_scalars.py").path
        let result = try run([python, helper, "--load-fast", loadFast, directory] + tags, timeout: 150)
        try #require(result.status == 0, "\(result)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let scalars = try #require(object["scalars"] as? [String: [[Double]]])
        #expect(object["runs"] as? [String] == ["."])
        return scalars.mapValues { $0.map { (Int($0[0]), $0[1]) } }
    }

    /// A run that logged steps 1-30, checkpointed at 20 and was killed writing 31; resumed at 20 it logs
    /// 21-40 with other values. TensorBoard serves each step once, the resumed values after 20.
    @Test(arguments: ["false", "true"]) func servesAResumedRunWithoutDuplicateSteps(loadFast: String) throws {
        let directory = Repo.scratch("tensorboard")
        func loss(_ step: Int, _ session: Int) -> Double { 2.0 / Double(step) + Double(session) * 0.001 }
        let first = try TensorBoardEventWriter(directory: directory)
        for step in 1...30 {
            try first.write(step: step, [("train/loss", loss(step, 1)), ("train/accuracy", Double(step) / 40)])
            if step % 10 == 0 { try first.write(step: step, [("epoch/val_loss", loss(step, 1) * 1.1)]) }
        }
        try first.close()
        // Killed in the middle of writing step 31.
        let torn = EventRecords.frame(Event(wallTime: 0, step: 31, scalars: [.init("train/loss", 9)]).encoded())
        let handle = try #require(FileHandle(forWritingAtPath: first.path))
        handle.seekToEndOfFile()
        handle.write(Data(torn.prefix(torn.count - 3)))
        handle.closeFile()
        let resumed = try TensorBoardEventWriter(directory: directory, resumingAt: 20)
        for step in 21...40 {
            try resumed.write(step: step, [("train/loss", loss(step, 2)), ("train/accuracy", Double(step) / 40)])
            if step % 10 == 0 { try resumed.write(step: step, [("epoch/val_loss", loss(step, 2) * 1.1)]) }
        }
        try resumed.close()

        let served = try Self.served(directory, tags: ["train/loss", "train/accuracy", "epoch/val_loss"], loadFast: loadFast)
        let trainLoss = try #require(served["train/loss"])
        #expect(trainLoss.map(\.0) == Array(1...40))
        // Values are float32 in the file; the Rust server's doubles may differ in the last bit.
        #expect(trainLoss.map { Float($0.1) } == (1...40).map { Float(loss($0, $0 <= 20 ? 1 : 2)) })
        #expect(try #require(served["train/accuracy"]).map { Float($0.1) } == (1...40).map { Float(Double($0) / 40) })
        let validation = try #require(served["epoch/val_loss"])
        #expect(validation.map(\.0) == [10, 20, 30, 40])
        #expect(validation.map { Float($0.1) } == [(10, 1), (20, 1), (30, 2), (40, 2)].map { Float(loss($0.0, $0.1) * 1.1) })
    }

    /// The restart marker alone: a copy of a file that was never cut (steps 1-10, then a START
    /// at 6 and new steps 6-8). TensorBoard's own loader drops the orphaned 6-10.
    @Test(arguments: ["false", "true"]) func tensorBoardHonoursTheRestartMarker(loadFast: String) throws {
        let directory = Repo.scratch("tensorboard-start")
        var events = [Event(wallTime: 1, step: 0, fileVersion: "brain.Event:2"),
                      Event(wallTime: 1, step: 1, sessionStatus: Event.sessionStart)]
        events += (1...10).map { Event(wallTime: 2, step: $0, scalars: [.init("loss", Float($0))]) }
        events.append(Event(wallTime: 3, step: 6, sessionStatus: Event.sessionStart))
        events += (6...8).map { Event(wallTime: 4, step: $0, scalars: [.init("loss", Float($0) + 0.5)]) }
        let bytes = events.flatMap { EventRecords.frame($0.encoded()) }
        try Data(bytes).write(to: URL(fileURLWithPath: directory + "/events.out.tfevents.1.test"))

        let served = try #require(try Self.served(directory, tags: ["loss"], loadFast: loadFast)["loss"])
        #expect(served.map(\.0) == Array(1...8))
        #expect(served.map(\.1) == [1, 2, 3, 4, 5, 6.5, 7.5, 8.5])
    }
}
