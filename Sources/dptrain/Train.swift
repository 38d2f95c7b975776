import ArgumentParser
import Collectives
import Foundation
import Training

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train; under mpirun every rank trains one shared model.")
    private static let defaults = TrainingConfig()

    @OptionGroup var model: ModelOptions
    @OptionGroup var modelFile: ModelFileOption
    @OptionGroup var data: DataOptions
    @OptionGroup var optimizer: OptimizerOptions
    @OptionGroup var scaling: ScalingOptions
    @OptionGroup var precision: PrecisionOption
    @OptionGroup var observability: ObservabilityOptions
    @Option(help: "Epochs to train.") var epochs = defaults.epochs
    @Option(help: "Seed for the initial weights and the shuffles.") var seed = defaults.seed
    @Option(help: "Fraction of the training set held out (the last part, as in Keras).") var validationSplit = defaults.validationSplit
    @Option(help: "Output directory (default runs/<timestamp>).") var runDir: String?
    @Option(help: "Stop after this many global steps (with a checkpoint there).") var maxSteps: Int?
    @Option(help: "Worker threads per rank, each with single-threaded BLAS (default: the cores of this node shared among its ranks).") var threads: Int?
    @Option(help: "Start from the weights of a saved model.") var initModel: String?
    @Option(help: "Also checkpoint every N global steps (a checkpoint is always written at each epoch end).") var checkpointEvery = defaults.checkpointEvery
    @Option(help: "Numbered checkpoints kept.") var keep = defaults.keep
    @Flag(help: "Also keep checkpoints/best.safetensors, the best by validation accuracy.") var saveBest = defaults.saveBest
    @Option(help: "'auto' (newest good checkpoint in the run directory, else a fresh start) or a checkpoint file.") var resume: String?
    @Option(help: "Stop when val_loss has not improved for this many epochs (Keras EarlyStopping; needs --validation-split).") var earlyStopping: Int?
    @Flag(help: "With --early-stopping: end with the weights of the best epoch.") var restoreBestWeights = false
    @Flag(help: "Start afresh in a run directory that holds an earlier run's checkpoints, deleting them (without it such a directory is refused).") var overwrite = false

    func validate() throws {
        guard epochs >= 1 else { throw ValidationError("--epochs: must be at least 1, got \(epochs)") }
        if let earlyStopping, earlyStopping < 0 { throw ValidationError("--early-stopping: must be 0 or more, got \(earlyStopping)") }
        if restoreBestWeights && earlyStopping == nil { throw ValidationError("--restore-best-weights: applies with --early-stopping only") }
        guard validationSplit >= 0, validationSplit < 1 else {
            throw ValidationError("--validation-split: must be in [0, 1), got \(validationSplit)")
        }
        if let maxSteps, maxSteps < 1 { throw ValidationError("--max-steps: must be at least 1, got \(maxSteps)") }
        if let threads, threads < 1 { throw ValidationError("--threads: must be at least 1, got \(threads)") }
        guard checkpointEvery >= 0 else { throw ValidationError("--checkpoint-every: must be 0 or more, got \(checkpointEvery)") }
        guard keep >= 1 else { throw ValidationError("--keep: must be at least 1, got \(keep)") }
        if overwrite && resume != nil { throw ValidationError("--overwrite: cannot be combined with --resume") }
    }

    /// `config()`'s `note:` lines: the flags that override a --model file's settings.
    private var notes: [String] = []

    mutating func config() throws -> TrainingConfig {
        var config = TrainingConfig()
        config.model = try model.layers().graph()
        config.dataDirectory = data.path
        config.dataLoading = data.loading
        notes = try modelFile.apply(to: &config, optimizer: optimizer)
        scaling.apply(to: &config)
        precision.apply(to: &config)
        config.epochs = epochs
        config.earlyStopping = earlyStopping
        config.restoreBestWeights = restoreBestWeights
        config.seed = seed
        config.validationSplit = validationSplit
        config.maxSteps = maxSteps
        config.threads = threads
        config.runDirectory = runDir ?? "runs/" + Self.timestamp()
        config.initModel = initModel
        config.checkpointEvery = checkpointEvery
        config.keep = keep
        config.saveBest = saveBest
        config.resume = resume
        config.overwrite = overwrite
        config.observability = observability.settings
        return config
    }

    static func timestamp() -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        return formatter.string(from: Date())
    }

    mutating func run() throws {
        var config: TrainingConfig
        do { config = try self.config() } catch { fail("\(error)") }
        let comm: Communicator
        do { comm = try MPICommunicator() } catch { fail("\(error)") }
        StopSignal.install()
        let prefix = comm.size > 1 ? "rank \(comm.rank): " : ""
        if comm.size > 1 {
            // Rank 0 names the run directory; the others only need it to agree.
            let name = try comm.broadcast(bytes: Array(config.runDirectory.utf8))
            config.runDirectory = String(decoding: name, as: UTF8.self)
        }
        let log: (String) -> Void = { if comm.isRoot { print($0) } }
        notes.forEach(log)
        do {
            let trainer = try Trainer(config: config, communicator: comm, log: log)
            let outcome = try trainer.train()
            comm.finalize()
            if case .stoppedBySignal = outcome { Foundation.exit(StopSignal.exitStatus) }
        } catch let failure as AgreedFailure {
            // Every rank knows: all leave together. The failing rank says why; rank 0 says who.
            if failure.localError != nil || comm.isRoot {
                FileHandle.standardError.write(Data("dptrain: \(prefix)error: \(failure)\n".utf8))
            }
            comm.finalize()
            Foundation.exit(1)
        } catch {
            // Only this rank knows, and the others may be waiting for it in a collective: end the
            // whole job now, cause first.
            FileHandle.standardError.write(Data("dptrain: \(prefix)error: \(error)\n".utf8))
            if comm.size > 1 { comm.abort(code: 1) }
            comm.finalize()
            Foundation.exit(1)
        }
    }
}
