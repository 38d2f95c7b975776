import Foundation
import Graph
import KerasFiles
import Testing
import ZIPFoundation

/// Every file DPTrain cannot take is refused with one line naming the file, and for a model it
/// cannot run, the layer, its class and the setting.
@Suite struct KerasBadInputTests {
    static let scratch: String = {
        let path = NSTemporaryDirectory() + "keras-bad-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }()

    static func text(_ name: String) -> String {
        String(decoding: FileManager.default.contents(atPath: Fixture.path(name))!, as: UTF8.self)
    }

    /// A fixture's JSON with the first `old` replaced by `new` (Python's json.dumps spacing).
    static func edited(_ name: String, _ old: String, _ new: String, as file: String) throws -> String {
        let original = text(name)
        precondition(original.contains(old), "\(name) has no \(old)")
        let path = "\(scratch)/\(file)"
        try Data(original.replacingOccurrences(of: old, with: new, options: [], range: original.range(of: old)).utf8)
            .write(to: URL(fileURLWithPath: path))
        return path
    }

    /// A fixture archive with entries replaced or dropped.
    static func archive(_ name: String, as file: String, _ replace: [String: Data] = [:], drop: Set<String> = []) throws -> String {
        let source = try Archive(url: URL(fileURLWithPath: Fixture.path(name)), accessMode: .read)
        let path = "\(scratch)/\(file)"
        try? FileManager.default.removeItem(atPath: path)
        let target = try Archive(url: URL(fileURLWithPath: path), accessMode: .create)
        for entry in source {
            var data = Data()
            _ = try source.extract(entry) { data.append($0) }
            if drop.contains(entry.path) { continue }
            if let replacement = replace[entry.path] { data = replacement }
            try target.addEntry(with: entry.path, type: .file, uncompressedSize: Int64(data.count)) { position, size in
                data.subdata(in: Int(position)..<(Int(position) + size))
            }
        }
        return path
    }

    static func configEdited(_ name: String, _ old: String, _ new: String, as file: String) throws -> String {
        let source = try Archive(url: URL(fileURLWithPath: Fixture.path(name)), accessMode: .read)
        var config = Data()
        _ = try source.extract(source["config.json"]!) { config.append($0) }
        let text = String(decoding: config, as: UTF8.self)
        precondition(text.contains(old), "\(name) has no \(old)")
        return try archive(name, as: file, ["config.json": Data(text.replacingOccurrences(of: old, with: new, options: [], range: text.range(of: old)).utf8)])
    }

    static func message(_ path: String) -> String? {
        do {
            _ = try KerasModel.read(path: path)
            return nil
        } catch let error as KerasFileError {
            return error.description
        } catch {
            return "not a KerasFileError: \(error)"
        }
    }

    static func expectRefused(_ path: String, _ expected: String) {
        let line = message(path)
        #expect(line == "\(path): \(expected)")
        #expect(line?.contains("\n") == false)
    }

    @Test func unknownLayerClass() {
        Self.expectRefused(Fixture.path("conv3d.json"),
                           "layer 'conv3d' (Conv3D): not a layer DPTrain supports; it has Activation, Add, AveragePooling2D, BatchNormalization, Conv2D, Dense, Dropout, Flatten, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling2D, RandomFlip, RandomTranslation, ReLU, Rescaling")
    }

    @Test func twoInputs() {
        Self.expectRefused(Fixture.path("two_inputs.json"),
                           "layer 'right' (InputLayer): a second input (the model reads 'left', 'right'); DPTrain models take one image input")
    }

    @Test func unsupportedSettings() throws {
        let cases: [(String, String, String, String)] = [
            ("\"dilation_rate\": [1, 1]", "\"dilation_rate\": [2, 2]", "dilation.json", "layer 'conv2d' (Conv2D): dilation_rate [2, 2]: only 1 is supported"),
            ("\"data_format\": \"channels_last\"", "\"data_format\": \"channels_first\"", "channels_first.json", "layer 'conv2d' (Conv2D): data_format \"channels_first\": DPTrain is channels_last only"),
            ("\"groups\": 1", "\"groups\": 2", "groups.json", "layer 'conv2d' (Conv2D): groups 2: only 1 is supported"),
            ("\"kernel_regularizer\": null", "\"kernel_regularizer\": {\"module\": \"keras.regularizers\", \"class_name\": \"L2\", \"config\": {\"l2\": 0.01}, \"registered_name\": null}",
             "regularizer.json", "layer 'conv2d' (Conv2D): kernel_regularizer is set: regularizers and constraints are not supported"),
            ("\"kernel_constraint\": null", "\"kernel_constraint\": {\"module\": \"keras.constraints\", \"class_name\": \"MaxNorm\", \"config\": {}, \"registered_name\": null}",
             "constraint.json", "layer 'conv2d' (Conv2D): kernel_constraint is set: regularizers and constraints are not supported"),
            ("\"class_name\": \"GlorotUniform\"", "\"class_name\": \"HeNormal\"", "initializer.json",
             "layer 'conv2d' (Conv2D): kernel_initializer HeNormal is not supported without weights (DPTrain initialises it as GlorotUniform); save the model with model.save() so its weights come along"),
            ("\"activation\": \"relu\"", "\"activation\": \"elu\"", "elu.json", "layer 'conv2d' (Conv2D): activation \"elu\" is not supported (linear, relu, softmax, sigmoid, tanh, gelu)"),
            ("\"padding\": \"valid\"", "\"padding\": \"causal\"", "causal.json", "layer 'conv2d' (Conv2D): padding \"causal\" is not supported (valid, same)"),
            ("\"rate\": 0.5", "\"rate\": 0.5, \"noise_shape\": [null, 1]", "noise_shape.json", "layer 'dropout' (Dropout): noise_shape [null, 1]: only null is supported"),
            ("\"trainable\": true, \"dtype\": {\"module\": \"keras\", \"class_name\": \"DTypePolicy\", \"config\": {\"name\": \"float32\"}, \"registered_name\": null}, \"units\"",
             "\"trainable\": false, \"dtype\": {\"module\": \"keras\", \"class_name\": \"DTypePolicy\", \"config\": {\"name\": \"float32\"}, \"registered_name\": null}, \"units\"",
             "frozen.json", "layer 'dense' (Dense): trainable is false: frozen layers are not supported"),
            ("\"units\": 10", "\"units\": 10, \"lora_rank\": 4", "lora.json", "layer 'dense' (Dense): setting lora_rank=4 is not supported"),
            ("\"batch_shape\": [null, 16, 16, 1]", "\"batch_shape\": [null, 256]", "flat_input.json",
             "layer 'input_layer' (InputLayer): batch_shape [null, 256] is not (batch, height, width, channels): DPTrain takes images, channels last"),
        ]
        for (old, new, file, expected) in cases {
            Self.expectRefused(try Self.edited("convnet.json", old, new, as: file), expected)
        }
    }

    @Test func unsupportedLayerModes() throws {
        Self.expectRefused(try Self.configEdited("augment.keras", "\"mode\": \"horizontal\"", "\"mode\": \"vertical\"", as: "vertical.keras"),
                           "layer 'random_flip' (RandomFlip): mode \"vertical\": only \"horizontal\" is supported")
        Self.expectRefused(try Self.configEdited("augment.keras", "\"axis\": -1", "\"axis\": 1", as: "axis.keras"),
                           "layer 'batch_normalization_1' (BatchNormalization): axis 1: only the channel axis (-1 or 3) is supported")
        Self.expectRefused(try Self.configEdited("augment.keras", "\"fill_mode\": \"constant\"", "\"fill_mode\": \"mirror\"", as: "fill.keras"),
                           "layer 'random_translation' (RandomTranslation): fill_mode \"mirror\" is not supported (reflect, wrap, constant, nearest)")
        Self.expectRefused(try Self.configEdited("residual.keras", "\"max_value\": null", "\"max_value\": 6.0", as: "relu6.keras"),
                           "layer 're_lu' (ReLU): max_value 6.0: only null is supported")
        Self.expectRefused(try Self.configEdited("residual.keras", "\"keepdims\": false", "\"keepdims\": true", as: "keepdims.keras"),
                           "layer 'global_average_pooling2d' (GlobalAveragePooling2D): keepdims is true: only false is supported")
    }

    /// With weights in the file, a non-default initializer does not matter: read, and said so.
    @Test func initializerIsNotedWhenWeightsArePresent() throws {
        let path = try Self.configEdited("convnet.keras", "\"class_name\": \"GlorotUniform\"", "\"class_name\": \"HeNormal\"", as: "he.keras")
        let model = try KerasModel.read(path: path)
        #expect(model.notes == ["\(path): layer 'conv2d' (Conv2D): kernel_initializer HeNormal ignored: the file's weights are used"])
        #expect(model.graph == KerasReadTests.convnet)
    }

    @Test func weightsThatDoNotFitTheConfig() throws {
        Self.expectRefused(try Self.configEdited("convnet.keras", "\"filters\": 8", "\"filters\": 4", as: "filters.keras"),
                           "model.weights.h5: layer 'conv2d' (Conv2D): layers/conv2d/vars/0 has shape [3, 3, 1, 8], conv2d/kernel needs [3, 3, 1, 4]")
        Self.expectRefused(try Self.configEdited("convnet.keras", "\"use_bias\": true", "\"use_bias\": false", as: "bias.keras"),
                           "model.weights.h5: layer 'conv2d' (Conv2D): 2 variables at layers/conv2d/vars, the layer has 1 (conv2d/kernel)")
    }

    @Test func notAKerasFile() throws {
        let whole = FileManager.default.contents(atPath: Fixture.path("convnet.keras"))!
        let truncated = "\(Self.scratch)/truncated.keras"
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: truncated))
        Self.expectRefused(truncated, "not a .keras archive (no zip directory: the file is truncated or not a zip)")

        Self.expectRefused(try Self.archive("convnet.keras", as: "noconfig.keras", drop: ["config.json"]),
                           "no config.json in the archive (not a Keras 3 .keras file)")
        Self.expectRefused(try Self.archive("convnet.keras", as: "noweights.keras", drop: ["model.weights.h5"]),
                           "no model.weights.h5 in the archive")
        Self.expectRefused(try Self.archive("convnet.keras", as: "badconfig.keras", ["config.json": Data("{\"module\": \"keras\",\n \"class_name\": [".utf8)]),
                           "config.json: invalid JSON at line 2, column 17: the text ends where a value should be")
        Self.expectRefused(try Self.archive("convnet.keras", as: "badh5.keras", ["model.weights.h5": Data("not hdf5".utf8)]),
                           "model.weights.h5 in the archive is not an HDF5 file")

        let invalid = "\(Self.scratch)/invalid.json"
        try Data("{\"class_name\": \"Sequential\", \"config\": {\"layers\": [}".utf8).write(to: URL(fileURLWithPath: invalid))
        Self.expectRefused(invalid, "invalid JSON at line 1, column 52: expected a value")

        let subclassed = "\(Self.scratch)/subclassed.json"
        try Data("{\"module\": \"__main__\", \"class_name\": \"MyModel\", \"config\": {}}".utf8).write(to: URL(fileURLWithPath: subclassed))
        Self.expectRefused(subclassed, "a MyModel model: only Sequential and Functional models are supported (a subclassed model's config has no layer graph)")

        Self.expectRefused("\(Self.scratch)/missing.keras", "no such file")
    }

    @Test func writeRefusesWeightsThatDoNotFit() throws {
        let model = try KerasModel.read(path: Fixture.path("convnet.keras"))
        let path = "\(Self.scratch)/out.keras"
        var missing = model.weights
        missing["dense/bias"] = nil
        #expect(throws: KerasFileError("\(path): no weights for dense/bias")) {
            try KerasModel.write(graph: model.graph, weights: missing, compile: nil, to: path)
        }
        var wrong = model.weights
        wrong["dense/bias"] = .init(shape: [9], values: Array(repeating: 0, count: 9))
        #expect(throws: KerasFileError("\(path): dense/bias has shape [9] with 9 values, the model needs [10]")) {
            try KerasModel.write(graph: model.graph, weights: wrong, compile: nil, to: path)
        }
        // A layer off the path to the output: Keras would drop it, and its weights with it.
        var graph = model.graph
        graph.functional = true
        graph.nodes.insert(Node(name: "unused", layer: .flatten, inputs: ["conv2d"]), at: 1)
        #expect(throws: KerasFileError("\(path): layer 'unused' (Flatten) does not lead to the output 'dense'; Keras would drop it")) {
            try KerasModel.write(graph: graph, weights: model.weights, compile: nil, to: path)
        }
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(!FileManager.default.fileExists(atPath: path + ".tmp"))
    }
}
