import Foundation
import Graph

/// A Keras 3 model file's content: the graph its layer configs define, the weights it holds and
/// its compile config. `read` takes a `.keras` archive (`model.save()`) or the JSON of
/// `model.to_json()`; `write` makes a `.keras` archive that `keras.saving.load_model` opens.
public struct KerasModel: Equatable, Sendable {
    /// One variable's values, row-major in Keras's shape (HWIO conv kernels, [in, out] dense kernels).
    public struct Weight: Equatable, Sendable {
        public var shape: [Int]
        public var values: [Float]
        public init(shape: [Int], values: [Float]) { (self.shape, self.values) = (shape, values) }
    }

    public var graph: ModelGraph
    /// By Keras variable path (`ModelGraph.Variable.path`, e.g. "conv2d/kernel",
    /// "batch_normalization/moving_mean"): every variable of `graph.resolve()`, or none for a file
    /// without weights (`model.to_json()`).
    public var weights: [String: Weight]
    /// `compile_config`, nil when the model was saved uncompiled.
    public var compile: KerasCompile?
    /// The optimizer's saved state (`optimizer/vars/<i>`: Keras's iteration count, learning rate,
    /// then its slots) as float32, in Keras's order; empty when the file has none.
    public var optimizerVariables: [Weight]
    /// Settings read and deliberately ignored, one line each, to print as `note:` lines
    /// (e.g. a non-default initializer of a file whose weights are used instead).
    public var notes: [String]
    /// `metadata.json`'s keras_version; nil for a `.json` file.
    public var kerasVersion: String?

    public init(graph: ModelGraph, weights: [String: Weight] = [:], compile: KerasCompile? = nil,
                optimizerVariables: [Weight] = [], notes: [String] = [], kerasVersion: String? = nil) {
        (self.graph, self.weights, self.compile, self.optimizerVariables, self.notes, self.kerasVersion) =
            (graph, weights, compile, optimizerVariables, notes, kerasVersion)
    }

    /// The Keras version `write` claims in metadata.json, the one its configs follow.
    public static let kerasVersionWritten = "3.15.1"
}

/// A model's `compile_config`, kept as Keras wrote it: the caller maps it onto its own settings.
public struct KerasCompile: Equatable, Sendable {
    /// Keras's optimizer class: "SGD", "Adam", "AdamW", "RMSprop", …
    public var optimizer: String
    /// The optimizer's config object, e.g. `["learning_rate": 0.001, "beta_1": 0.9, …]`; a
    /// learning-rate schedule is an object in it, as Keras serialises one.
    public var optimizerConfig: KerasValue
    /// "categorical_crossentropy", or a serialised loss object; nil if none was given.
    public var loss: KerasValue?
    /// As Keras wrote them, e.g. ["accuracy"]; empty if none.
    public var metrics: [KerasValue]

    public init(optimizer: String, optimizerConfig: KerasValue = [:], loss: KerasValue? = "categorical_crossentropy", metrics: [KerasValue] = ["accuracy"]) {
        (self.optimizer, self.optimizerConfig, self.loss, self.metrics) = (optimizer, optimizerConfig, loss, metrics)
    }

    /// The loss's function name: the string itself, or a loss object's class in Keras's snake
    /// case ("CategoricalCrossentropy" → "categorical_crossentropy").
    public var lossName: String? {
        if let name = loss?.string { return name }
        return loss?["class_name"]?.string.map(KerasNames.snakeCase)
    }
}

/// Bad input: one line naming the file (and the layer, its class and what is unsupported).
public struct KerasFileError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

enum KerasNames {
    /// Keras's `naming.to_snake_case`, which names each layer's group in model.weights.h5.
    static func snakeCase(_ name: String) -> String {
        let chars = Array(name.filter { $0.isLetter || $0.isNumber || $0 == "_" })
        func upper(_ c: Character) -> Bool { c.isASCII && c.isUppercase }
        func lower(_ c: Character) -> Bool { c.isASCII && c.isLowercase }
        // "(.)([A-Z][a-z]+)" → "\1_\2": an underscore before each capitalised word but the first.
        var first: [Character] = []
        var i = 0
        while i < chars.count {
            if i > 0, upper(chars[i]), i + 1 < chars.count, lower(chars[i + 1]) { first.append("_") }
            first.append(chars[i])
            i += 1
        }
        // "([a-z])([A-Z])" → "\1_\2", then lower case.
        var out = ""
        for (j, c) in first.enumerated() {
            if j > 0, lower(first[j - 1]), upper(c) { out.append("_") }
            out.append(c)
        }
        return out.lowercased()
    }
}
