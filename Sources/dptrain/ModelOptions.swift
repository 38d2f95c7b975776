import ArgumentParser
import Datasets
import NN
import Training

/// A comma-separated list of values of one kind, e.g. `--filters 32,64`, parsed by the
/// argument parser itself so a bad element is refused naming the flag.
struct ListArgument<Element: ExpressibleByArgument & CustomStringConvertible & Sendable>: ExpressibleByArgument, CustomStringConvertible, Sendable {
    var values: [Element]

    init(_ values: [Element]) { self.values = values }

    init?(argument: String) {
        var values: [Element] = []
        for part in argument.split(separator: ",", omittingEmptySubsequences: false) {
            guard let value = Element(argument: part.trimmingCharacters(in: .whitespaces)) else { return nil }
            values.append(value)
        }
        self.values = values
    }

    var description: String { values.map(\.description).joined(separator: ",") }
    var defaultValueDescription: String { description }
}

extension Architecture.Padding: ExpressibleByArgument, CustomStringConvertible {
    public var description: String { rawValue }
}

/// Layer options; a single value applies to every conv block, a comma list sets each. The
/// defaults are the reference model's.
struct ModelOptions: ParsableArguments {
    private static let reference = Architecture.mnistReference

    @Option(help: "Filters of each conv block (its count sets the number of blocks).")
    var filters = ListArgument(reference.convBlocks.map(\.filters))
    @Option(help: "Kernel size per conv block.")
    var kernelSize = ListArgument([reference.convBlocks[0].kernelSize])
    @Option(help: "Convolution stride per conv block.")
    var strides = ListArgument([reference.convBlocks[0].stride])
    @Option(help: "Padding per conv block: valid or same.")
    var padding = ListArgument([reference.convBlocks[0].padding])
    @Option(help: "Max-pooling size per conv block (stride = size).")
    var poolSize = ListArgument([reference.convBlocks[0].poolSize])
    @Option(help: "Widths of hidden Dense(relu) layers before the softmax, e.g. 128 or 128,64 (default: none).")
    var dense = ListArgument<Int>(reference.hiddenDense)

    func validate() throws { _ = try layers() }

    /// The layers, for the reference model's input; the data's shape replaces it at start-up.
    func layers() throws -> Architecture {
        let blockCount = filters.values.count
        func perBlock<T>(_ list: ListArgument<T>, _ flag: String) throws -> [T] {
            if list.values.count == 1 { return Array(repeating: list.values[0], count: blockCount) }
            guard list.values.count == blockCount else {
                throw ValidationError("\(flag): give one value or one per conv block (\(blockCount)), got \(list.values.count)")
            }
            return list.values
        }
        let kernels = try perBlock(kernelSize, "--kernel-size"), strides = try perBlock(strides, "--strides")
        let pools = try perBlock(poolSize, "--pool-size"), paddings = try perBlock(padding, "--padding")
        var architecture = Self.reference
        architecture.convBlocks = (0..<blockCount).map {
            .init(filters: filters.values[$0], kernelSize: kernels[$0], stride: strides[$0], padding: paddings[$0], poolSize: pools[$0])
        }
        architecture.hiddenDense = dense.values
        return architecture
    }

    /// The layers fitted to the data they will read.
    func graph(for data: DataShape) throws -> ModelGraph {
        do { return try layers().graph().fitted(to: data) } catch let error as TrainingError {
            throw ValidationError("the model does not fit: \(error)")
        }
    }
}

/// `--model FILE`: a Keras model (`model.save()`'s `.keras`, or `model.to_json()`'s JSON) to
/// train, summarise or time instead of the model flags.
struct ModelFileOption: ParsableArguments {
    @Option(name: .customLong("model"), help: "A Keras 3 model: a .keras file (its weights start the run) or model.to_json()'s JSON.")
    var path: String?

    /// The file's graph and compile settings, into `config`; the notes of the flags that override them.
    func apply(to config: inout TrainingConfig, optimizer: OptimizerOptions) throws -> [String] {
        guard let path else { return try optimizer.apply(to: &config) }
        let user = try UserModel(path: path)
        config.model = user.keras.graph
        config.modelFile = path
        let keras = try user.keras.compile.map { try KerasTrainingSettings($0, file: path) }
        return user.keras.notes.map { "note: \(path): \($0)" } + (try optimizer.apply(to: &config, keras: keras))
    }
}

