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
            let network = try loadModel(modelFile, for: data.shape, fallback: try model.layers(), maxBatch: 500)
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
    @Option(help: "An IDX file of images, N×H×W or N×H×W×C (raw or .gz).") var images: String
    @Option(help: "An IDX file of their labels.") var labels: String?

    func run() throws {
        do {
            try ModelOptions.refuseFlags(with: modelFile)
            let imageFile = try IDXFile(path: images)
            let dims = imageFile.dimensions
            guard dims.count == 3 || dims.count == 4 else {
                throw DataError("\(images): expected 3 or 4 dimensions (count, height, width[, channels]), found \(dims.count)")
            }
            let shape = DataShape(height: dims[1], width: dims[2], channels: dims.count == 4 ? dims[3] : 1, classes: nil, source: images)
            let network = try loadModel(modelFile, for: shape, fallback: try model.layers(), maxBatch: 500)
            let classes = network.architecture.classes
            let count = dims[0]
            var truth: [UInt8]?
            if let labels {
                let labelFile = try IDXFile(path: labels)
                guard labelFile.dimensions == [count] else {
                    throw DataError("\(labels): holds \(labelFile.dimensions.first ?? 0) labels for \(count) images")
                }
                if let bad = labelFile.bytes.firstIndex(where: { Int($0) >= classes }) {
                    throw DataError("\(labels): label \(labelFile.bytes[bad]) at index \(bad) is outside 0-\(classes - 1)")
                }
                truth = labelFile.bytes
            }
            let set = LabeledImages(images: imageFile.bytes, labels: truth ?? [UInt8](repeating: 0, count: count),
                                    count: count, height: shape.height, width: shape.width, channels: shape.channels)
            let predictions = network.classify(set)
            print(predictions.map(String.init).joined(separator: "\n"))
            guard let truth else { return }
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
        guard let given, (try? SafeTensors.metadata(atPath: file))?[ModelFile.architectureKey] != nil else { return }
        throw ValidationError("\(given.split(separator: "=")[0]): does not apply: \(file) records its architecture")
    }
}
