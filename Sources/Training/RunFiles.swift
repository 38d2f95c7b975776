import KerasFiles
import Datasets
import ModelFiles
import NN

/// metrics.csv and metrics.jsonl, rewritten whole at every epoch end. A resumed run keeps the
/// rows of the epochs its checkpoint has; a fresh start clears them.
final class MetricsLogger: TrainingObserver {
    let run: RunDirectory
    private var rows: [EpochMetrics] = []

    init(run: RunDirectory) { self.run = run }

    func runStarted(_ start: RunStart) throws {
        rows = run.epochRows(before: start.resumedFrom == nil ? 0 : start.epoch)
        try run.writeMetrics(rows)
    }

    func epochEnded(_ row: EpochMetrics, finished: Bool) throws {
        rows.append(row)
        try run.writeMetrics(rows)
    }
}

/// The run's results: model.safetensors (final weights under Keras names) and summary.json.
final class FinalFiles: TrainingObserver {
    let run: RunDirectory
    let network: Network
    let config: TrainingConfig

    init(run: RunDirectory, network: Network, config: TrainingConfig) { (self.run, self.network, self.config) = (run, network, config) }

    func runFinished(_ summary: RunSummary) throws {
        var model = try ModelFile.tensors(of: network)
        model.metadata[Checkpoint.checksumKey] = SHA256.hex(model.dataSection)
        try AtomicFile.write(try model.serialized(), to: run.model)
        try KerasModel.write(graph: network.graph, weights: kerasWeights(), compile: kerasCompile(), to: run.kerasModel)
        try AtomicFile.write(try ModelFile.encode(summary) + "\n", to: run.summaryJSON)
    }

    private func kerasWeights() -> [String: KerasModel.Weight] {
        Dictionary(uniqueKeysWithValues: network.tensors.map {
            ($0.name, KerasModel.Weight(shape: $0.shape, values: Array(network.parameters[$0.offset..<($0.offset + $0.count)])))
        })
    }

    /// The run's optimizer as Keras's compile_config, so `model.fit` in Keras goes on with the same rule.
    private func kerasCompile() -> KerasCompile {
        let o = config.optimizer
        var members: [KerasValue.Member] = [.init("name", .string(o.kind.rawValue)), .init("learning_rate", .double(Double(config.baseLearningRate))),
                                            .init("weight_decay", o.weightDecay == 0 ? .null : .double(o.weightDecay))]
        switch o.kind {
        case .sgd: members += [.init("momentum", .double(o.momentum)), .init("nesterov", .bool(o.nesterov))]
        case .adam, .adamw: members += [.init("beta_1", .double(o.beta1)), .init("beta_2", .double(o.beta2)), .init("epsilon", .double(o.epsilon))]
        case .rmsprop: members += [.init("rho", .double(o.rho)), .init("momentum", .double(o.momentum)),
                                   .init("epsilon", .double(o.epsilon)), .init("centered", .bool(o.centered))]
        }
        let name = ["sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop"][o.kind.rawValue]!
        return KerasCompile(optimizer: name, optimizerConfig: .object(members))
    }
}
