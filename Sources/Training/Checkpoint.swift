import Datasets
import Foundation
import ModelFiles
import NN

/// A resumable snapshot: one safetensors file with the weights under their Keras names, each
/// optimizer state buffer as `optimizer/<tensor>/<state>`, and in `__metadata__` the position,
/// the configuration, the optimizer's kind and settings, the data's SHA-256 and a SHA-256 of the
/// tensor bytes (safetensors has no checksum of its own).
struct Checkpoint {
    static let format = "dptrain-checkpoint-2"
    /// Early stopping's best weights, kept with --restore-best-weights.
    static let bestWeightsPrefix = "early_stopping/"
    let path: String
    let file: SafeTensors
    let state: RunState
    let ranks: Int

    init(network: Network, optimizer: any Optimizer, bestWeights: [Float]?, config: TrainingConfig, dataFingerprint: String,
         state: RunState, ranks: Int) throws {
        (self.state, self.ranks) = (state, ranks)
        path = ""
        var file = try ModelFile.tensors(of: network)
        for buffer in optimizer.state {
            for t in network.trainableTensors {
                file.append(Self.stateName(t, buffer.name), SafeTensors.Tensor(floats: Array(buffer.values[t.offset..<(t.offset + t.count)]), shape: t.shape))
            }
        }
        if let bestWeights {
            for t in network.tensors {
                file.append(Self.bestWeightsPrefix + t.name, SafeTensors.Tensor(floats: Array(bestWeights[t.offset..<(t.offset + t.count)]), shape: t.shape))
            }
        }
        let exact = { (value: Double) in String(format: "%.17g", value) }
        file.metadata = file.metadata.merging([
            ModelFile.formatKey: Self.format, "run_id": state.runID,
            "epoch": "\(state.epoch)", "step": "\(state.stepInEpoch)", "global_step": "\(state.globalStep)", "seed": "\(config.seed)",
            "ranks": "\(ranks)", "config": try ModelFile.encode(config), "data_sha256": dataFingerprint,
            "optimizer": optimizer.kind, "optimizer_settings": try ModelFile.encode(optimizer.settings),
            "optimizer_iterations": "\(optimizer.iterations)",
            Self.checksumKey: SHA256.hex(file.dataSection),
            "epoch_loss_sum": exact(state.epochTotals.lossSum), "epoch_correct": exact(state.epochTotals.correct),
            "epoch_seen": "\(state.epochTotals.count)", "epoch_seconds": exact(state.epochSeconds),
            "best_val_accuracy": exact(state.bestValidationAccuracy), "best_val_loss": exact(state.bestValidationLoss),
            "epochs_without_improvement": "\(state.epochsWithoutImprovement)",
            "reduction_state": state.reductionState.map(String.init).joined(separator: ","),
            "epoch_learning_rates": state.epochLearningRates.map { "\($0)" }.joined(separator: ","),
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
        guard meta[Self.checksumKey] != nil else { throw TrainingError("\(path): metadata '\(Self.checksumKey)' is missing") }
        try Self.verifyChecksum(of: file, path: path)
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
        ranks = try int("ranks")
        state = RunState(epoch: try int("epoch"), stepInEpoch: try int("step"), globalStep: try int("global_step"),
                         epochTotals: Totals(lossSum: try double("epoch_loss_sum"), correct: try double("epoch_correct"), count: try int("epoch_seen")),
                         epochSeconds: try double("epoch_seconds"), bestValidationAccuracy: try double("best_val_accuracy"),
                         bestValidationLoss: try double("best_val_loss"), epochsWithoutImprovement: try int("epochs_without_improvement"),
                         reductionState: (meta["reduction_state"] ?? "").split(separator: ",").compactMap { Int($0) },
                         epochLearningRates: (meta["epoch_learning_rates"] ?? "").split(separator: ",").compactMap { Float(String($0)) },
                         runID: meta["run_id"] ?? "")
    }

    var name: String { (path as NSString).lastPathComponent }

    static let checksumKey = "tensors_sha256"

    /// A file that carries a SHA-256 of its tensor bytes (checkpoints and dptrain's model files)
    /// must match it: a flipped byte is refused, not scored or trained on.
    static func verifyChecksum(of file: SafeTensors, path: String) throws {
        guard let stored = file.metadata[checksumKey] else { return }
        guard stored == SHA256.hex(file.dataSection) else {
            throw TrainingError("\(path): corrupt: the tensor data does not match its SHA-256")
        }
    }

    /// Refuses a checkpoint of another model, data or optimizer, or one whose position means
    /// something else under the current flags (batch size and seed fix the order of examples).
    /// Returns the settings that may change on resume and did.
    func verify(matches config: TrainingConfig, optimizer: any Optimizer, dataFingerprint: String) throws -> [SettingChange] {
        let model = try ModelFile.model(of: file, name: path)
        guard model == config.model else {
            throw TrainingError("\(path): was saved for a different architecture than the one configured")
        }
        guard file.metadata["data_sha256"] == dataFingerprint else {
            throw TrainingError("\(path): was trained on different data (data SHA-256 \(file.metadata["data_sha256"] ?? "none"), now \(dataFingerprint))")
        }
        guard let json = file.metadata["config"], let saved = try? JSONDecoder().decode(TrainingConfig.self, from: Data(json.utf8)) else {
            throw TrainingError("\(path): its configuration metadata cannot be read")
        }
        var changes: [SettingChange] = []
        let (before, now) = (saved.settings, config.settings)
        for flag in Set(before.keys).union(now.keys).sorted() {
            let (old, new) = (before[flag] ?? "none", now[flag] ?? "none")
            guard old != new else { continue }
            if TrainingConfig.ordering.contains(flag) {
                throw TrainingError("\(path): was written with \(flag) \(old); resuming it with \(new) would not continue the same run")
            }
            changes.append(SettingChange(setting: flag, old: old, new: new))
        }
        let kind = file.metadata["optimizer"] ?? "sgd"
        guard kind == optimizer.kind else {
            throw TrainingError("\(path): was trained with the \(kind) optimizer, not \(optimizer.kind)")
        }
        let savedState = Set(file.tensors.map(\.name).filter { $0.hasPrefix(Self.optimizerPrefix) }.map { String($0.split(separator: "/").last!) })
        guard savedState == Set(optimizer.state.map(\.name)) else {
            throw TrainingError("\(path): holds the state of \(Self.describe(saved: file.metadata)); it cannot resume with \(Self.describe(optimizer))")
        }
        let savedSettings = file.metadata["optimizer_settings"].flatMap { try? JSONDecoder().decode([String: String].self, from: Data($0.utf8)) } ?? [:]
        for (key, value) in optimizer.settings.sorted(by: { $0.key < $1.key }) where savedSettings[key] != nil && savedSettings[key] != value {
            changes.append(SettingChange(setting: "--\(key)", old: savedSettings[key]!, new: value))
        }
        return changes
    }

    static func describe(_ optimizer: any Optimizer) -> String { describe(kind: optimizer.kind, settings: optimizer.settings) }

    static func describe(saved meta: [String: String]) -> String {
        let settings = meta["optimizer_settings"].flatMap { try? JSONDecoder().decode([String: String].self, from: Data($0.utf8)) } ?? [:]
        return describe(kind: meta["optimizer"] ?? "sgd", settings: settings)
    }

    /// "sgd, momentum 0.9, nesterov false, weight_decay 0.0".
    private static func describe(kind: String, settings: [String: String]) -> String {
        ([kind] + settings.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }).joined(separator: ", ")
    }

    /// `optimizer/<tensor>/<state>`, e.g. `optimizer/conv2d/kernel/velocity`.
    static func stateName(_ tensor: ParameterTensor, _ state: String) -> String { "\(optimizerPrefix)\(tensor.name)/\(state)" }
    static let optimizerPrefix = "optimizer/"

    /// Fills every state buffer of `optimizer` from the tensors of the same names.
    func restore(into network: Network, optimizer: any Optimizer) throws {
        try ModelFile.load(file, into: network, name: path)
        for buffer in optimizer.state {
            for t in network.trainableTensors {
                let name = Self.stateName(t, buffer.name)
                guard let values = file[name]?.floats, values.count == t.count else {
                    throw TrainingError("\(path): optimizer state '\(name)' is missing or has the wrong size")
                }
                for i in 0..<t.count { buffer.values[t.offset + i] = values[i] }
            }
        }
        optimizer.iterations = file.metadata["optimizer_iterations"].flatMap(Int.init) ?? state.globalStep
    }

    /// Early stopping's best weights, when the checkpoint has them.
    func bestWeights(for network: Network) -> [Float]? {
        var weights = [Float](repeating: 0, count: network.parameterCount)
        for t in network.tensors {
            guard let values = file[Self.bestWeightsPrefix + t.name]?.floats, values.count == t.count else { return nil }
            weights.replaceSubrange(t.offset..<(t.offset + t.count), with: values)
        }
        return weights
    }

    /// Rank 0 only. Atomic; then prunes all but the newest `keep` numbered checkpoints of this
    /// run (another run's checkpoints in the same directory are never touched).
    func write(in run: RunDirectory, best: Bool, keep: Int) throws -> String {
        let name = best ? "best.safetensors" : String(format: "ckpt-%09d.safetensors", state.globalStep)
        let path = (run.checkpoints as NSString).appendingPathComponent(name)
        try AtomicFile.write(try file.serialized(), to: path)
        if !best {
            let mine = Self.numbered(in: run).filter { (try? SafeTensors.metadata(atPath: $0))?["run_id"] == state.runID }
            for old in mine.dropFirst(max(keep, 1)) { try? FileManager.default.removeItem(atPath: old) }
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
