import Datasets
import Foundation
import NN

/// A resumable snapshot: one safetensors file with the weights under their Keras names, the
/// optimizer state as `optimizer/<name>/velocity`, and in `__metadata__` the position, the
/// configuration, the data's SHA-256 and a SHA-256 of the tensor bytes (safetensors has no
/// checksum of its own).
struct Checkpoint {
    static let format = "dptrain-checkpoint-1"
    let path: String
    let file: SafeTensors
    let epoch, stepInEpoch, globalStep, ranks: Int
    let partialEpoch: PartialEpoch
    let bestValidationAccuracy: Double

    init(network: Network, optimizer: any Optimizer, config: TrainingConfig, dataFingerprint: String, epoch: Int, stepInEpoch: Int,
         globalStep: Int, ranks: Int, partialEpoch: PartialEpoch, bestValidationAccuracy: Double) throws {
        (self.epoch, self.stepInEpoch, self.globalStep, self.ranks) = (epoch, stepInEpoch, globalStep, ranks)
        self.partialEpoch = partialEpoch
        self.bestValidationAccuracy = bestValidationAccuracy
        path = ""
        var file = try ModelFile.tensors(of: network)
        for state in optimizer.state {
            for t in network.tensors {
                file.append(Self.stateName(t, state.name), SafeTensors.Tensor(floats: Array(state.values[t.offset..<(t.offset + t.count)]), shape: t.shape))
            }
        }
        let exact = { (value: Double) in String(format: "%.17g", value) }
        file.metadata = file.metadata.merging([
            ModelFile.formatKey: Self.format,
            "epoch": "\(epoch)", "step": "\(stepInEpoch)", "global_step": "\(globalStep)", "seed": "\(config.seed)",
            "ranks": "\(ranks)", "config": try ModelFile.encode(config), "data_sha256": dataFingerprint,
            "tensors_sha256": SHA256.hex(file.dataSection),
            "epoch_loss_sum": exact(partialEpoch.lossSum), "epoch_correct": exact(partialEpoch.correct),
            "epoch_seen": "\(partialEpoch.seen)", "epoch_seconds": exact(partialEpoch.seconds),
            "best_val_accuracy": exact(bestValidationAccuracy),
        ]) { $1 }
        self.file = file
    }

    /// Reads `path` and checks that it is whole: a valid safetensors file whose tensor bytes
    /// match the stored SHA-256 and whose metadata names a position.
    init(path: String) throws {
        let file = try SafeTensors(path: path)
        let meta = file.metadata
        guard meta[ModelFile.formatKey] == Self.format else {
            throw TrainingError("\(path): not a dptrain checkpoint (format '\(meta[ModelFile.formatKey] ?? "none")')")
        }
        guard let stored = meta["tensors_sha256"], stored == SHA256.hex(file.dataSection) else {
            throw TrainingError("\(path): corrupt: the tensor data does not match its SHA-256")
        }
        func int(_ key: String) throws -> Int {
            guard let value = meta[key].flatMap(Int.init) else { throw TrainingError("\(path): metadata '\(key)' is missing or not a number") }
            return value
        }
        func double(_ key: String) throws -> Double {
            guard let value = meta[key].flatMap(Double.init) else { throw TrainingError("\(path): metadata '\(key)' is missing or not a number") }
            return value
        }
        self.path = path
        self.file = file
        (epoch, stepInEpoch, globalStep, ranks) = (try int("epoch"), try int("step"), try int("global_step"), try int("ranks"))
        partialEpoch = PartialEpoch(lossSum: try double("epoch_loss_sum"), correct: try double("epoch_correct"),
                                    seen: try int("epoch_seen"), seconds: try double("epoch_seconds"))
        bestValidationAccuracy = try double("best_val_accuracy")
    }

    /// Refuses a checkpoint of another model or data, or one whose position means something
    /// else under the current flags (batch size and seed fix the order of examples).
    func verify(matches config: TrainingConfig, dataFingerprint: String, name: String) throws {
        let architecture = try ModelFile.architecture(of: file, name: name)
        guard architecture == config.architecture else {
            throw TrainingError("\(name): was saved for a different architecture than the one configured")
        }
        guard file.metadata["data_sha256"] == dataFingerprint else {
            throw TrainingError("\(name): was trained on different data (data SHA-256 \(file.metadata["data_sha256"] ?? "none"), now \(dataFingerprint))")
        }
        guard let json = file.metadata["config"], let saved = try? JSONDecoder().decode(TrainingConfig.self, from: Data(json.utf8)) else {
            throw TrainingError("\(name): its configuration metadata cannot be read")
        }
        for (flag, old, new) in [("--batch-size", "\(saved.batchSize)", "\(config.batchSize)"), ("--seed", "\(saved.seed)", "\(config.seed)"),
                                 ("--validation-split", "\(saved.validationSplit)", "\(config.validationSplit)"),
                                 ("--momentum", "\(saved.momentum)", "\(config.momentum)")] where old != new {
            throw TrainingError("\(name): was written with \(flag) \(old); resuming it with \(new) would not continue the same run")
        }
    }

    /// `optimizer/<tensor>/<state>`, e.g. `optimizer/conv2d/kernel/velocity`.
    static func stateName(_ tensor: ParameterTensor, _ state: String) -> String { "optimizer/\(tensor.name)/\(state)" }

    /// Fills every state buffer of `optimizer` from the tensors of the same names.
    func restoreState(of optimizer: any Optimizer, network: Network) throws {
        for state in optimizer.state {
            for t in network.tensors {
                let name = Self.stateName(t, state.name)
                guard let values = file[name]?.floats, values.count == t.count else {
                    throw TrainingError("\(path): optimizer state '\(name)' is missing or has the wrong size")
                }
                for i in 0..<t.count { state.values[t.offset + i] = values[i] }
            }
        }
    }

    /// Rank 0 only. Atomic; then prunes all but the newest `keep` numbered checkpoints.
    func write(in run: RunDirectory, best: Bool, keep: Int) throws -> String {
        let name = best ? "best.safetensors" : String(format: "ckpt-%09d.safetensors", globalStep)
        let path = (run.checkpoints as NSString).appendingPathComponent(name)
        try AtomicFile.write(try file.serialized(), to: path)
        if !best {
            for old in Self.numbered(in: run).dropFirst(max(keep, 1)) { try? FileManager.default.removeItem(atPath: old) }
        }
        return path
    }

    /// Numbered checkpoints, newest first.
    static func numbered(in run: RunDirectory) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: run.checkpoints)) ?? []
        return names.filter { $0.hasPrefix("ckpt-") && $0.hasSuffix(".safetensors") }.sorted(by: >)
            .map { (run.checkpoints as NSString).appendingPathComponent($0) }
    }

    /// `--resume FILE` must verify; `--resume auto` takes the newest that does, saying what it
    /// skipped, and returns nil (a fresh start) when there is none.
    static func find(_ resume: String, in run: RunDirectory, log: (String) -> Void) throws -> Checkpoint? {
        guard resume == "auto" else { return try Checkpoint(path: resume) }
        for path in numbered(in: run) {
            do { return try Checkpoint(path: path) } catch { log("skipping checkpoint: \(error)") }
        }
        return nil
    }
}
