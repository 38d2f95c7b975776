import ArgumentParser
import Datasets
import Foundation
import ModelFiles
import Training

struct Evaluate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Score a saved model or checkpoint on the test set.")
    @OptionGroup var model: ModelOptions
    @Option(name: .customLong("model"), help: "A model.safetensors or a checkpoint.") var modelFile: String
    @OptionGroup var data: DataOptions

    func run() throws {
        do {
            let data = try data.load()
            try ModelOptions.refuseFlags(with: modelFile)
            let network = try loadModel(modelFile, for: data.shape, fallback: try model.layers().graph(), maxBatch: 500)
            let test = network.score(data.test)
            print("test loss: \(String(format: "%.4f", test.loss)) - test accuracy: \(String(format: "%.4f", test.accuracy))")
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
    @Option(parsing: .upToNextOption,
            help: "Images to classify: PNG/JPEG files (converted to the model's channels and size unless --color-mode / --image-size say otherwise), or one IDX or .npy array N×H×W[×C]. Without it, the test set of --data.")
    var images: [String] = []
    @Option(help: "Labels of --images: an IDX or .npy file.") var labels: String?
    @OptionGroup var data: DataOptions

    func run() throws {
        do {
            try ModelOptions.refuseFlags(with: modelFile)
            let set: LabeledImages, truth: [Int32]?, source: String
            if images.isEmpty {
                let dataset = try data.load()
                (set, truth, source) = (dataset.test, Array(dataset.test.labels), dataset.directory)
            } else {
                // The input (height, width, channels) the model file records.
                let recorded = modelFile.hasSuffix(".keras") ? try UserModel(path: modelFile).keras.graph.input
                    : try ModelFile.model(of: SafeTensors(path: modelFile), name: modelFile)?.input
                let mode = data.colorMode ?? recorded.flatMap { input in ColorMode.allCases.first { $0.channels == input[2] } }
                let size = data.imageSize?.values ?? recorded.map { Array($0.prefix(2)) }
                set = try readImageFiles(images, colorMode: mode, imageSize: size)
                source = images.count == 1 ? images[0] : "\(images[0]) and \(images.count - 1) more"
                truth = try labels.map { path throws -> [Int32] in
                    let values = try readLabelFile(path)
                    guard values.count == set.count else { throw DataError("\(path): holds \(values.count) labels for \(set.count) images") }
                    return values
                }
            }
            let shape = DataShape(height: set.height, width: set.width, channels: set.channels, classes: nil, source: source)
            let network = try loadModel(modelFile, for: shape, fallback: try model.layers().graph(), maxBatch: 500)
            let classes = network.classes
            if let truth, let bad = truth.firstIndex(where: { $0 < 0 || Int($0) >= classes }) {
                throw DataError("\(labels ?? source): label \(truth[bad]) at index \(bad) is outside 0-\(classes - 1)")
            }
            let predictions = network.classify(set)
            print(predictions.map(String.init).joined(separator: "\n"))
            guard let truth else { return }
            let count = set.count
            var confusion = [[Int]](repeating: [Int](repeating: 0, count: classes), count: classes)
            for (p, t) in zip(predictions, truth) { confusion[Int(t)][p] += 1 }
            let correct = (0..<classes).reduce(0) { $0 + confusion[$1][$1] }
            print("accuracy: \(String(format: "%.4f", Double(correct) / Double(count))) (\(correct)/\(count))")
            print("confusion matrix (rows: true class, columns: predicted):")
            print("     " + (0..<classes).map { String(format: "%6d", $0) }.joined())
            for (t, row) in confusion.enumerated() { print(String(format: "%4d ", t) + row.map { String(format: "%6d", $0) }.joined()) }
        } catch {
            fail("\(error)")
        }
    }
}

extension ModelOptions {
    static let flags = ["--filters", "--kernel-size", "--strides", "--padding", "--pool-size", "--dense"]

    /// Model flags describe a file from elsewhere; for a file that records its architecture they
    /// would be ignored, so they are refused.
    static func refuseFlags(with file: String) throws {
        let given = CommandLine.arguments.first { argument in flags.contains { argument == $0 || argument.hasPrefix($0 + "=") } }
        let metadata = file.hasSuffix(".keras") ? [:] : (try? SafeTensors.metadata(atPath: file)) ?? [:]
        let records = file.hasSuffix(".keras") || metadata[ModelFile.modelKey] != nil || metadata[ModelFile.architectureKey] != nil
        guard let given, records else { return }
        throw ValidationError("\(given.split(separator: "=")[0]): does not apply: \(file) records its architecture")
    }
}
