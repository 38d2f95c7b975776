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

    init(run: RunDirectory, network: Network) { (self.run, self.network) = (run, network) }

    func runFinished(_ summary: RunSummary) throws {
        var model = try ModelFile.tensors(of: network)
        model.metadata[Checkpoint.checksumKey] = SHA256.hex(model.dataSection)
        try AtomicFile.write(try model.serialized(), to: run.model)
        try AtomicFile.write(try ModelFile.encode(summary) + "\n", to: run.summaryJSON)
    }
}
