import Foundation
import ModelFiles

/// The files rank 0 keeps for a run: Keras CSVLogger's metrics.csv, metrics.jsonl, summary.json,
/// model.safetensors, and checkpoints/.
public struct RunDirectory {
    public let path: String
    public var metricsCSV: String { file("metrics.csv") }
    public var metricsJSONL: String { file("metrics.jsonl") }
    public var summaryJSON: String { file("summary.json") }
    public var model: String { file("model.safetensors") }
    /// The same model for Keras: `keras.saving.load_model` opens it as it is.
    public var kerasModel: String { file("model.keras") }
    public var checkpoints: String { file("checkpoints") }

    public init(path: String) { self.path = path }

    public func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    public func create() throws {
        // Foundation's error text names neither the file nor the cause ("error 512"): find a
        // file standing where a directory should be, and say so.
        var prefix = ""
        for part in (checkpoints as NSString).pathComponents {
            prefix = prefix.isEmpty ? part : (prefix as NSString).appendingPathComponent(part)
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: prefix, isDirectory: &isDirectory), !isDirectory.boolValue {
                throw TrainingError("\(prefix): is a file, not a directory (--run-dir \(path))")
            }
        }
        guard mkdirs(checkpoints) else {
            throw TrainingError("\(path): cannot create the run directory (\(String(cString: strerror(errno))))")
        }
    }

    /// mkdir -p, keeping errno for the message.
    private func mkdirs(_ directory: String) -> Bool {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) { return isDirectory.boolValue }
        // Not NSString's deletingLastPathComponent: Foundation traps on a one-letter relative name.
        let parent = directory.lastIndex(of: "/").map { String(directory[..<$0]) } ?? ""
        if !parent.isEmpty && parent != directory && !mkdirs(parent) { return false }
        return mkdir(directory, 0o755) == 0 || errno == EEXIST
    }

    var holdsCheckpoints: Bool {
        ((try? FileManager.default.contentsOfDirectory(atPath: checkpoints)) ?? []).contains { $0.hasSuffix(".safetensors") }
    }

    /// A fresh start must never pick up or keep another run's checkpoints: it refuses a run
    /// directory that holds some, unless told to clear it (then it deletes the run's files).
    func clearForFreshStart(overwrite: Bool) throws {
        guard holdsCheckpoints else { return }
        guard overwrite else {
            throw TrainingError("\(path): holds the checkpoints of an earlier run; continue it with --resume auto, or start afresh with --overwrite (deletes them)")
        }
        for item in [checkpoints, metricsCSV, metricsJSONL, summaryJSON, model, kerasModel] where FileManager.default.fileExists(atPath: item) {
            do { try FileManager.default.removeItem(atPath: item) } catch {
                throw TrainingError("\(item): cannot be removed for --overwrite (\(error.localizedDescription))")
            }
        }
        try create()
    }

    /// The per-epoch rows (metrics.jsonl) kept from an earlier run: those of epochs before `epoch`.
    public func epochRows(before epoch: Int) -> [EpochMetrics] {
        guard let text = try? String(contentsOfFile: metricsJSONL, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONDecoder().decode(EpochMetrics.self, from: Data($0.utf8)) }
            .filter { $0.epoch < epoch }
    }

    /// Rewrites both metrics files from `rows` (atomic, so a crash never leaves half a row).
    public func writeMetrics(_ rows: [EpochMetrics]) throws {
        let hasValidation = rows.contains { $0.valLoss != nil }
        var csv = hasValidation ? "epoch,accuracy,loss,val_accuracy,val_loss\n" : "epoch,accuracy,loss\n"
        var jsonl = ""
        for row in rows {
            csv += "\(row.epoch),\(row.accuracy),\(row.loss)"
            if hasValidation { csv += ",\(row.valAccuracy.map { "\($0)" } ?? ""),\(row.valLoss.map { "\($0)" } ?? "")" }
            csv += "\n"
            jsonl += try ModelFile.encode(row) + "\n"
        }
        try AtomicFile.write(csv, to: metricsCSV)
        try AtomicFile.write(jsonl, to: metricsJSONL)
    }
}

/// One epoch's line in metrics.jsonl. `epoch` counts from 0, as in Keras's CSVLogger.
public struct EpochMetrics: Codable, Equatable, Sendable {
    public var epoch: Int
    public var loss: Double
    public var accuracy: Double
    public var valLoss: Double?
    public var valAccuracy: Double?
    public var steps: Int
    public var seconds: Double
    public var imagesPerSecond: Double
    /// Time this epoch spent in the gradient allreduce (rank 0's view, waiting included).
    public var allreduceSeconds: Double
    /// The learning rate of each of the epoch's steps, in order.
    public var learningRates: [Double]
    /// Each rank's mean step time and reduction time this epoch, and the rank the others waited for.
    public var rankTimes: [RankTime]?
    public var slowestRank: Int?

    enum CodingKeys: String, CodingKey {
        case epoch, loss, accuracy, steps, seconds
        case learningRates = "learning_rates"
        case valLoss = "val_loss", valAccuracy = "val_accuracy", imagesPerSecond = "images_per_second"
        case allreduceSeconds = "allreduce_seconds", rankTimes = "rank_times", slowestRank = "slowest_rank"
    }
}

/// summary.json.
public struct RunSummary: Codable, Sendable {
    public var testLoss: Double
    public var testAccuracy: Double
    public var epochs: Int
    public var steps: Int
    public var ranks: Int
    /// Worker threads that ran per rank (fewer than asked when a rank's batch slice is smaller).
    public var threads: Int
    public var seconds: Double
    public var imagesPerSecond: Double
    /// Largest peak resident memory of any rank.
    public var peakMemoryMB: Double
    public var dataFingerprint: String
    public var config: TrainingConfig
    public var optimizer: String
    /// The base learning rate after scaling for the global batch (`config.batchSize`).
    public var learningRate: Double
    public var stoppedEarly: Bool
    /// Settings a resume changed (empty for an uninterrupted run).
    public var resumeChanges: [SettingChange]
    /// Each rank's mean step time and reduction time over this run's steps, and the slowest rank.
    public var rankTimes: [RankTime]?
    public var slowestRank: Int?

    enum CodingKeys: String, CodingKey {
        case epochs, steps, ranks, threads, seconds, config, optimizer
        case peakMemoryMB = "peak_memory_mb"
        case testLoss = "test_loss", testAccuracy = "test_accuracy", imagesPerSecond = "images_per_second"
        case dataFingerprint = "data_sha256", resumeChanges = "resume_changes"
        case learningRate = "learning_rate", stoppedEarly = "stopped_early", rankTimes = "rank_times", slowestRank = "slowest_rank"
    }
}
