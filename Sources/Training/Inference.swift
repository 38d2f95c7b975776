import Datasets
import ModelFiles
import NN

extension Network {
    /// Summed loss and correct count over examples `range` of `set`, in chunks of the network's
    /// batch capacity, through the caller's input and label buffers (the workers reuse theirs).
    public func totals(of set: LabeledImages, range: Range<Int>, x: UnsafeMutablePointer<Float>,
                       y: UnsafeMutablePointer<Int32>) -> Totals {
        var total = Totals()
        forEachChunk(of: set, range: range, x: x, y: y) { count in total += totals(x, labels: y, batch: count) }
        return total
    }

    /// Mean loss and accuracy over `set`.
    public func score(_ set: LabeledImages) -> Totals.Means {
        withBuffers { x, y in totals(of: set, range: 0..<set.count, x: x, y: y) }.means
    }

    /// The most probable class of every image of `set`.
    public func classify(_ set: LabeledImages) -> [Int] {
        var predictions: [Int] = []
        let classes = self.classes
        withBuffers { x, y in
            forEachChunk(of: set, range: 0..<set.count, x: x, y: y) { count in
                forward(x, batch: count)
                for b in 0..<count {
                    let p = probabilities + b * classes
                    predictions.append((0..<classes).max { p[$0] < p[$1] }!)
                }
            }
        }
        return predictions
    }

    private func forEachChunk(of set: LabeledImages, range: Range<Int>, x: UnsafeMutablePointer<Float>,
                              y: UnsafeMutablePointer<Int32>, _ body: (Int) -> Void) {
        for start in stride(from: range.lowerBound, to: range.upperBound, by: maxBatch) {
            let count = min(maxBatch, range.upperBound - start)
            set.gather(start..<(start + count), into: x, labels: y, scale: pixelScale)
            body(count)
        }
    }

    private func withBuffers<T>(_ body: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Int32>) -> T) -> T {
        // The network's own input buffer: gathered there, the forward pass copies nothing.
        let y = UnsafeMutablePointer<Int32>.allocate(capacity: maxBatch)
        defer { y.deallocate() }
        return body(input, y)
    }
}

extension ModelGraph {
    /// The model flags' layers for `shape`'s input and class count (the last Dense takes the
    /// data's classes); throws naming the data when the layers do not fit its images.
    public func fitted(to shape: DataShape) throws -> ModelGraph {
        var fitted = self
        fitted.input = [shape.height, shape.width, shape.channels]
        if let classes = shape.classes, let last = fitted.nodes.indices.last, case .dense(var d) = fitted.nodes[last].layer {
            d.units = classes
            fitted.nodes[last].layer = .dense(d)
        }
        do { _ = try fitted.resolve() } catch {
            throw TrainingError("\(shape.source): its \(shape.imageDescription) images do not fit the model: \(error)")
        }
        return fitted
    }

    /// Refuses a model made for another input shape or class count, naming both.
    func checkInput(matches shape: DataShape, file path: String) throws {
        let classes = try self.classes
        guard input == [shape.height, shape.width, shape.channels], shape.classes.map({ $0 == classes }) ?? true else {
            throw TrainingError("\(path): takes \(try inputDescription), but \(shape.source) holds \(shape.description)")
        }
    }

    /// "28x28x1 images in 10 classes".
    public var inputDescription: String {
        get throws { "\(input.map(String.init).joined(separator: "x")) images in \(try classes) classes" }
    }
}

/// Loads a saved model for data of `shape`: a `.keras` file (Keras's or one a run wrote), or a
/// model.safetensors or checkpoint with the model the file records (or `fallback`, the model
/// flags, fitted to the data, for a file from elsewhere). A model made for another input shape
/// or class count is refused naming both.
public func loadModel(_ path: String, for shape: DataShape, fallback: ModelGraph, maxBatch: Int) throws -> Network {
    if path.hasSuffix(".keras") {
        let user = try UserModel(path: path)
        try user.keras.graph.checkInput(matches: shape, file: path)
        let network = try Network(user.keras.graph, maxBatch: maxBatch)
        guard !user.keras.weights.isEmpty else { throw TrainingError("\(path): holds no weights") }
        try user.loadWeights(into: network)
        return network
    }
    let file = try SafeTensors(path: path)
    try Checkpoint.verifyChecksum(of: file, path: path)
    let model = try ModelFile.model(of: file, name: path) ?? fallback.fitted(to: shape)
    try model.checkInput(matches: shape, file: path)
    let network = try Network(model, maxBatch: maxBatch)
    try ModelFile.load(file, into: network, name: path)
    return network
}
