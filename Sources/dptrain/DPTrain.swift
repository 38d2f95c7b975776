import ArgumentParser
import Collectives
import Datasets
import Foundation
import NN
import Training

@main
struct DPTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dptrain",
        abstract: "Data-parallel CNN training on MNIST: run it alone or under mpirun/srun.",
        subcommands: [Summary.self, Train.self, Evaluate.self, Predict.self, Bench.self])

    /// ArgumentParser prints usage after an error; users asked for one line naming the flag.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            if exitCode(for: error) == .success { exit(withError: error) }
            fail(message(for: error))
        }
    }
}

func fail(_ message: String, prefix: String = "", status: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data("dptrain: \(prefix)error: \(message)\n".utf8))
    exit(status)
}

/// Layer options; a single value applies to every conv block, a comma list sets each.
struct ModelOptions: ParsableArguments {
    @Option(help: "Filters of each conv block (its count sets the number of blocks).")
    var filters = "32,64"
    @Option(help: "Kernel size per conv block.")
    var kernelSize = "5"
    @Option(help: "Convolution stride per conv block.")
    var strides = "1"
    @Option(help: "Padding per conv block: valid or same.")
    var padding = "valid"
    @Option(help: "Max-pooling size per conv block (stride = size).")
    var poolSize = "2"
    @Option(help: "Widths of hidden Dense(relu) layers before the softmax, e.g. 128 or 128,64.")
    var dense = ""

    func architecture() throws -> Architecture {
        func ints(_ text: String, _ flag: String) throws -> [Int] {
            guard !text.isEmpty else { return [] }
            return try text.split(separator: ",").map {
                guard let value = Int($0.trimmingCharacters(in: .whitespaces)) else {
                    throw ValidationError("\(flag): '\($0)' is not a whole number")
                }
                return value
            }
        }
        let filters = try ints(filters, "--filters")
        func perBlock<T>(_ values: [T], _ flag: String) throws -> [T] {
            if values.count == 1 { return Array(repeating: values[0], count: filters.count) }
            guard values.count == filters.count else {
                throw ValidationError("\(flag): give one value or one per conv block (\(filters.count)), got \(values.count)")
            }
            return values
        }
        let kernels = try perBlock(try ints(kernelSize, "--kernel-size"), "--kernel-size")
        let strides = try perBlock(try ints(strides, "--strides"), "--strides")
        let pools = try perBlock(try ints(poolSize, "--pool-size"), "--pool-size")
        let paddings = try perBlock(try padding.split(separator: ",").map {
            guard let value = Architecture.Padding(rawValue: String($0)) else {
                throw ValidationError("--padding: '\($0)' is not valid or same")
            }
            return value
        }, "--padding")
        var architecture = Architecture.mnistReference
        architecture.convBlocks = filters.indices.map {
            .init(filters: filters[$0], kernelSize: kernels[$0], stride: strides[$0], padding: paddings[$0], poolSize: pools[$0])
        }
        architecture.hiddenDense = try ints(dense, "--dense")
        do { _ = try architecture.layers() } catch { throw ValidationError("the model does not fit: \(error)") }
        return architecture
    }
}

struct Summary: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the Keras-style model summary.")
    @OptionGroup var model: ModelOptions

    func run() throws {
        print(try model.architecture().summaryTable())
    }
}

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Train; under mpirun every rank trains one shared model.")
    @OptionGroup var model: ModelOptions
    @Option(help: "Directory with the four MNIST IDX files (raw or .gz).") var dataDir = "data/mnist"
    @Option(help: "Epochs to train.") var epochs = 5
    @Option(help: "Global batch size, split over the ranks.") var batchSize = 100
    @Option(help: "SGD learning rate.") var lr: Float = 0.01
    @Option(help: "SGD momentum (Keras semantics).") var momentum: Float = 0
    @Option(help: "Seed for the initial weights and the shuffles.") var seed: UInt64 = 1
    @Option(help: "Fraction of the training set held out (the last part, as in Keras).") var validationSplit = 0.0
    @Option(help: "Output directory (default runs/<timestamp>).") var runDir: String?
    @Option(help: "Stop after this many global steps (with a checkpoint there).") var maxSteps: Int?
    @Option(help: "Worker threads per rank, each with single-threaded BLAS (default: the cores of this node shared among its ranks).") var threads: Int?
    @Option(help: "Start from the weights of a saved model.") var initModel: String?
    @Option(help: "Also checkpoint every N global steps (a checkpoint is always written at each epoch end).") var checkpointEvery = 0
    @Option(help: "Numbered checkpoints kept.") var keep = 3
    @Flag(help: "Also keep checkpoints/best.safetensors, the best by validation accuracy.") var saveBest = false
    @Option(help: "'auto' (newest good checkpoint in the run directory, else a fresh start) or a checkpoint file.") var resume: String?

    func validate() throws {
        guard epochs >= 1 else { throw ValidationError("--epochs: must be at least 1, got \(epochs)") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size: must be at least 1, got \(batchSize)") }
        guard lr > 0, lr.isFinite else { throw ValidationError("--lr: must be a positive number, got \(lr)") }
        guard momentum >= 0, momentum < 1 else { throw ValidationError("--momentum: must be in [0, 1), got \(momentum)") }
        guard validationSplit >= 0, validationSplit < 1 else {
            throw ValidationError("--validation-split: must be in [0, 1), got \(validationSplit)")
        }
        if let maxSteps, maxSteps < 1 { throw ValidationError("--max-steps: must be at least 1, got \(maxSteps)") }
        if let threads, threads < 1 { throw ValidationError("--threads: must be at least 1, got \(threads)") }
        guard checkpointEvery >= 0 else { throw ValidationError("--checkpoint-every: must be 0 or more, got \(checkpointEvery)") }
        guard keep >= 1 else { throw ValidationError("--keep: must be at least 1, got \(keep)") }
        _ = try model.architecture()
    }

    func config() throws -> TrainingConfig {
        var config = TrainingConfig()
        config.architecture = try model.architecture()
        config.dataDirectory = dataDir
        config.epochs = epochs
        config.batchSize = batchSize
        config.learningRate = lr
        config.momentum = momentum
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
        return config
    }

    static func timestamp() -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        return formatter.string(from: Date())
    }

    func run() throws {
        var config = try config()
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

/// Loads a model or checkpoint with the architecture it records (or the one given by flags).
func loadModel(_ path: String, options: ModelOptions, maxBatch: Int) throws -> Network {
    let file = try SafeTensors(path: path)
    let architecture = try ModelFile.architecture(of: file, name: path) ?? options.architecture()
    let network = try Network(architecture, maxBatch: maxBatch)
    try ModelFile.load(file, into: network, name: path)
    return network
}

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Score a saved model or checkpoint on the test set.")
    @OptionGroup var model: ModelOptions
    @Option(name: .customLong("model"), help: "A model.safetensors or a checkpoint.") var modelFile: String
    @Option(help: "Directory with the four MNIST files.") var dataDir = "data/mnist"

    func run() throws {
        do {
            let network = try loadModel(modelFile, options: model, maxBatch: 500)
            let data = try MNIST(directory: dataDir)
            let (loss, accuracy) = network.score(data.test)
            print("test loss: \(String(format: "%.4f", loss)) - test accuracy: \(String(format: "%.4f", accuracy))")
        } catch {
            fail("\(error)")
        }
    }
}

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the predicted class of each image; with labels, the accuracy and a confusion matrix.")
    @OptionGroup var model: ModelOptions
    @Option(name: .customLong("model"), help: "A model.safetensors or a checkpoint.") var modelFile: String
    @Option(help: "An IDX file of images (raw or .gz).") var images: String
    @Option(help: "An IDX file of their labels.") var labels: String?

    func run() throws {
        do {
            let network = try loadModel(modelFile, options: model, maxBatch: 500)
            let imageFile = try IDXFile(path: images)
            let a = network.architecture
            guard imageFile.dimensions.count == 3, imageFile.dimensions[1] == a.inputHeight, imageFile.dimensions[2] == a.inputWidth else {
                throw TrainingError("\(images): images are \(imageFile.dimensions.dropFirst()), the model takes \(a.inputHeight)x\(a.inputWidth)")
            }
            let count = imageFile.dimensions[0]
            var truth: [UInt8]?
            if let labels {
                let labelFile = try IDXFile(path: labels)
                guard labelFile.dimensions == [count] else {
                    throw TrainingError("\(labels): holds \(labelFile.dimensions.first ?? 0) labels for \(count) images")
                }
                if let bad = labelFile.bytes.firstIndex(where: { Int($0) >= a.classes }) {
                    throw TrainingError("\(labels): label \(labelFile.bytes[bad]) at index \(bad) is outside 0-\(a.classes - 1)")
                }
                truth = labelFile.bytes
            }
            let set = LabeledImages(images: imageFile.bytes, labels: truth ?? [UInt8](repeating: 0, count: count),
                                    count: count, rows: a.inputHeight, columns: a.inputWidth)
            let predictions = network.classify(set)
            print(predictions.map(String.init).joined(separator: "\n"))
            guard let truth else { return }
            var confusion = [[Int]](repeating: [Int](repeating: 0, count: a.classes), count: a.classes)
            for (p, t) in zip(predictions, truth) { confusion[Int(t)][p] += 1 }
            let correct = (0..<a.classes).reduce(0) { $0 + confusion[$1][$1] }
            print("accuracy: \(String(format: "%.4f", Double(correct) / Double(count))) (\(correct)/\(count))")
            print("confusion matrix (rows: true class, columns: predicted):")
            print("     " + (0..<a.classes).map { String(format: "%6d", $0) }.joined())
            for (t, row) in confusion.enumerated() { print(String(format: "%4d ", t) + row.map { String(format: "%6d", $0) }.joined()) }
        } catch {
            fail("\(error)")
        }
    }
}
