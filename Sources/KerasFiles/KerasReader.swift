import Foundation
import Graph
import ZIPFoundation

extension KerasModel {
    /// Reads a `.keras` archive (config.json, metadata.json, model.weights.h5) or a `.json` file
    /// (`model.to_json()`, no weights). Throws a `KerasFileError` of one line naming `path` for a
    /// file that is not one, and naming the layer, its class and the setting DPTrain lacks for a
    /// model it cannot run.
    public static func read(path: String) throws -> KerasModel {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file"
            throw KerasFileError("\(path): \(reason)")
        }
        let bytes = [UInt8](data)
        let firstByte = bytes.first { ![0x20, 0x0A, 0x0D, 0x09].contains($0) }
        if path.hasSuffix(".json") || firstByte == UInt8(ascii: "{") {
            let config = try parseJSON(bytes, path, what: "")
            var reader = ConfigReader(file: path, hasWeights: false)
            return try reader.model(config, weights: nil, kerasVersion: nil)
        }
        let archive: Archive
        do {
            // From the file, not from memory: ZIPFoundation 0.9.20's in-memory archive traps
            // (a negative read range) on a corrupt zip that seeks past its end; found by scripts/fuzz.
            archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read)
        } catch {
            throw KerasFileError("\(path): not a .keras archive (no zip directory: the file is truncated or not a zip)")
        }
        func entry(_ name: String) throws -> Data? {
            guard let entry = archive[name] else { return nil }
            var out = Data()
            do {
                _ = try archive.extract(entry, skipCRC32: false) { out.append($0) }
            } catch {
                throw KerasFileError("\(path): \(name) in the archive is damaged (\(error))")
            }
            return out
        }
        guard let configData = try entry("config.json") else {
            throw KerasFileError("\(path): no config.json in the archive (not a Keras 3 .keras file)")
        }
        let config = try parseJSON([UInt8](configData), path, what: "config.json: ")
        var kerasVersion: String?
        if let metadata = try entry("metadata.json") {
            kerasVersion = try parseJSON([UInt8](metadata), path, what: "metadata.json: ")["keras_version"]?.string
        }
        guard let weightsData = try entry("model.weights.h5") else {
            let sharded = archive["model.weights.json"] != nil ? " (sharded weights are not supported)" : ""
            throw KerasFileError("\(path): no model.weights.h5 in the archive\(sharded)")
        }
        guard let h5 = HDF5File.open(weightsData) else {
            throw KerasFileError("\(path): model.weights.h5 in the archive is not an HDF5 file")
        }
        var reader = ConfigReader(file: path, hasWeights: true)
        return try reader.model(config, weights: h5, kerasVersion: kerasVersion)
    }

    private static func parseJSON(_ bytes: [UInt8], _ path: String, what: String) throws -> KerasValue {
        do {
            return try KerasValue.parse(bytes)
        } catch let error as KerasValue.ParseError {
            throw KerasFileError("\(path): \(what)\(error.description)")
        }
    }
}

/// Turns Keras's model config into a ModelGraph, checking every setting a layer holds.
private struct ConfigReader {
    let file: String
    let hasWeights: Bool
    var notes: [String] = []

    init(file: String, hasWeights: Bool) { (self.file, self.hasWeights) = (file, hasWeights) }

    func fail(_ message: String) -> KerasFileError { KerasFileError("\(file): \(message)") }

    /// One layer's config, with what it was given checked off.
    struct Layer {
        let name: String
        let kerasClass: String
        let entry: KerasValue
        let config: KerasValue
    }

    func fail(_ layer: Layer, _ message: String) -> KerasFileError {
        KerasFileError("\(file): layer '\(layer.name)' (\(layer.kerasClass)): \(message)")
    }

    mutating func model(_ top: KerasValue, weights h5: HDF5File?, kerasVersion: String?) throws -> KerasModel {
        guard top.members != nil, let modelClass = top["class_name"]?.string else {
            throw fail("not a Keras model config (no class_name)")
        }
        let functional: Bool
        switch modelClass {
        case "Sequential": functional = false
        case "Functional", "Model": functional = true
        default: throw fail("a \(modelClass) model: only Sequential and Functional models are supported (a subclassed model's config has no layer graph)")
        }
        guard let config = top["config"], config.members != nil else { throw fail("the model config has no 'config' object") }
        let modelName = config["name"]?.string ?? (functional ? "functional" : "sequential")
        guard let entries = config["layers"]?.array else { throw fail("the model config has no 'layers' list") }

        var layers: [Layer] = []
        for (i, entry) in entries.enumerated() {
            guard let kerasClass = entry["class_name"]?.string, let layerConfig = entry["config"], layerConfig.members != nil else {
                throw fail("layer \(i) of the config has no class_name and config")
            }
            let name = layerConfig["name"]?.string ?? entry["name"]?.string ?? "\(KerasNames.snakeCase(kerasClass))_\(i)"
            layers.append(Layer(name: name, kerasClass: kerasClass, entry: entry, config: layerConfig))
        }

        // Every layer's settings first, so an unsupported layer is named before any wiring.
        var parsed: [ModelGraph.Layer?] = []
        for layer in layers {
            parsed.append(layer.kerasClass == "InputLayer" ? nil : try self.layer(layer))
        }
        let inputs = layers.indices.filter { layers[$0].kerasClass == "InputLayer" }

        var nodes: [ModelGraph.Node] = []
        let inputName: String
        let inputShape: [Int]
        if functional {
            guard let first = inputs.first else { throw fail("the Functional model has no InputLayer") }
            if inputs.count > 1 {
                throw fail(layers[inputs[1]], "a second input (the model reads \(inputs.map { "'\(layers[$0].name)'" }.joined(separator: ", "))); DPTrain models take one image input")
            }
            inputName = layers[first].name
            inputShape = try self.inputShape(layers[first])
            try checkEnds(config["input_layers"], [inputName], "input", layers)
            for (i, layer) in layers.enumerated() where i != first {
                nodes.append(ModelGraph.Node(name: layer.name, layer: parsed[i]!, inputs: try inbound(layer, isAdd: parsed[i]! == .add)))
            }
            guard let output = nodes.last else { throw fail("the model has no layers") }
            try checkEnds(config["output_layers"], [output.name], "output", layers)
            // Keras keeps only what leads to the output; a layer that does not is a mistake here.
            var needed: Set<String> = [output.name]
            for node in nodes.reversed() where needed.contains(node.name) { needed.formUnion(node.inputs) }
            if let stray = nodes.first(where: { !needed.contains($0.name) }) {
                throw fail(layers.first { $0.name == stray.name }!, "not connected to the output '\(output.name)'")
            }
        } else {
            if let first = inputs.first {
                if inputs.count > 1 { throw fail(layers[inputs[1]], "a second InputLayer in a Sequential model") }
                inputName = layers[first].name
                inputShape = try self.inputShape(layers[first])
            } else {
                guard let shape = config["build_input_shape"] ?? top["build_config"]?["input_shape"], !shape.isNull else {
                    throw fail("the Sequential model has no InputLayer and no build_input_shape: its input shape is unknown")
                }
                inputName = "input_layer"
                inputShape = try batchShape(shape, Layer(name: inputName, kerasClass: "InputLayer", entry: .null, config: .null))
            }
            var previous = inputName
            for (i, layer) in layers.enumerated() where layer.kerasClass != "InputLayer" {
                nodes.append(ModelGraph.Node(name: layer.name, layer: parsed[i]!, inputs: [previous]))
                previous = layer.name
            }
        }

        let graph = ModelGraph(name: modelName, functional: functional, input: inputShape, inputName: inputName, nodes: nodes)
        let resolved: [ModelGraph.Resolved]
        do {
            resolved = try graph.resolve()
        } catch let error as ModelGraph.ShapeError {
            throw fail(error.description)
        }

        var weights: [String: KerasModel.Weight] = [:]
        var optimizerVariables: [KerasModel.Weight] = []
        if let h5 {
            weights = try readWeights(h5, graph, resolved)
            optimizerVariables = try readOptimizer(h5)
        }
        return KerasModel(graph: graph, weights: weights, compile: try compile(top["compile_config"]),
                          optimizerVariables: optimizerVariables, notes: notes, kerasVersion: kerasVersion)
    }

    // MARK: Wiring

    func checkEnds(_ value: KerasValue?, _ expected: [String], _ what: String, _ layers: [Layer]) throws {
        guard let value, let list = value.array else { return }
        // One end is written [name, 0, 0]; several are [[name, 0, 0], …].
        let ends = list.first?.array != nil ? list.compactMap(\.array) : [list]
        let names = ends.compactMap { $0.first?.string }
        if names.count > 1, let second = layers.first(where: { $0.name == names[1] }) {
            throw fail(second, "a second \(what) (the model's \(what)s are \(names.map { "'\($0)'" }.joined(separator: ", "))); DPTrain models have one")
        }
        if names.count > 1 { throw fail("the model has \(names.count) \(what)s; DPTrain models have one") }
        if let name = names.first, name != expected[0] {
            throw fail("the model's \(what) is '\(name)', but the config's layers end with '\(expected[0])'")
        }
    }

    /// The layers a Functional layer reads, from its one inbound node.
    func inbound(_ layer: Layer, isAdd: Bool) throws -> [String] {
        guard let nodes = layer.entry["inbound_nodes"]?.array else { throw fail(layer, "no inbound_nodes: not a Functional layer config") }
        guard !nodes.isEmpty else { throw fail(layer, "not connected to anything (no inbound node)") }
        guard nodes.count == 1 else { throw fail(layer, "called \(nodes.count) times (shared layers are not supported)") }
        guard let args = nodes[0]["args"]?.array else {
            throw fail(layer, "inbound_nodes in a format other than Keras 3's (args and kwargs)")
        }
        for member in nodes[0]["kwargs"]?.members ?? [] {
            // `training` is overridden by the call (fit or evaluate); a null mask is no mask.
            if member.key == "training" || member.value.isNull { continue }
            throw fail(layer, "called with \(member.key)=\(member.value.json), which is not supported")
        }
        guard args.count == 1 else { throw fail(layer, "called with \(args.count) arguments; DPTrain layers take one tensor (Add: one list)") }
        func tensor(_ value: KerasValue) throws -> String {
            guard value["class_name"]?.string == "__keras_tensor__", let history = value["config"]?["keras_history"]?.array,
                  history.count == 3, let source = history[0].string else {
                throw fail(layer, "an argument that is not a layer's output: \(value.json.prefix(80))")
            }
            guard history[1].int == 0, history[2].int == 0 else {
                throw fail(layer, "reads output \(history[2].json) of call \(history[1].json) of '\(source)' (layers with several calls or outputs are not supported)")
            }
            return source
        }
        if let list = args[0].array {
            guard isAdd else { throw fail(layer, "called on a list of \(list.count) tensors; only Add takes a list") }
            return try list.map(tensor)
        }
        guard !isAdd else { throw fail(layer, "called on one tensor; Add takes a list of two or more") }
        return [try tensor(args[0])]
    }

    func batchShape(_ value: KerasValue, _ layer: Layer) throws -> [Int] {
        guard let dims = value.array, dims.count == 4, dims[0].isNull, let h = dims[1].int, let w = dims[2].int, let c = dims[3].int,
              h > 0, w > 0, c > 0 else {
            throw fail(layer, "batch_shape \(value.json) is not (batch, height, width, channels): DPTrain takes images, channels last")
        }
        return [h, w, c]
    }

    func inputShape(_ layer: Layer) throws -> [Int] {
        let config = layer.config
        guard let shape = config["batch_shape"] ?? config["batch_input_shape"] else { throw fail(layer, "no batch_shape") }
        if let dtype = config["dtype"], !dtype.isNull, dtypeName(dtype) != "float32" {
            throw fail(layer, "dtype \(dtypeName(dtype) ?? dtype.json): DPTrain reads float32 input")
        }
        for key in ["sparse", "ragged", "optional"] where config[key]?.bool == true {
            throw fail(layer, "\(key) input is not supported")
        }
        return try batchShape(shape, layer)
    }

    func dtypeName(_ dtype: KerasValue) -> String? {
        dtype.string ?? dtype["config"]?["name"]?.string
    }

    // MARK: Layers

    static let activations = ModelGraph.Activation.allCases.map(\.rawValue).joined(separator: ", ")

    /// The settings of each class that DPTrain reads or may ignore; any other key with a value
    /// other than null, false or 0 is refused.
    static let handled: [String: Set<String>] = [
        "Conv2D": ["filters", "kernel_size", "strides", "padding", "dilation_rate", "groups", "activation", "use_bias",
                   "kernel_initializer", "bias_initializer"],
        "Dense": ["units", "activation", "use_bias", "kernel_initializer", "bias_initializer", "lora_alpha"],
        "MaxPooling2D": ["pool_size", "strides", "padding"],
        "AveragePooling2D": ["pool_size", "strides", "padding"],
        "GlobalAveragePooling2D": ["keepdims"],
        "GlobalMaxPooling2D": ["keepdims"],
        "Flatten": [],
        "Dropout": ["rate", "seed", "noise_shape"],
        "BatchNormalization": ["axis", "momentum", "epsilon", "center", "scale", "beta_initializer", "gamma_initializer",
                               "moving_mean_initializer", "moving_variance_initializer", "synchronized", "renorm", "renorm_momentum"],
        "Activation": ["activation"],
        "ReLU": ["max_value", "negative_slope", "threshold"],
        "Rescaling": ["scale", "offset"],
        "Add": [],
        "RandomFlip": ["mode", "seed"],
        "RandomTranslation": ["height_factor", "width_factor", "fill_mode", "interpolation", "fill_value", "seed"],
    ]

    mutating func layer(_ layer: Layer) throws -> ModelGraph.Layer {
        guard let handled = Self.handled[layer.kerasClass] else {
            let supported = Self.handled.keys.sorted().joined(separator: ", ")
            let nested = ["Sequential", "Functional", "Model"].contains(layer.kerasClass) ? " (nested models are not supported)" : ""
            throw fail(layer, "not a layer DPTrain supports\(nested); it has \(supported)")
        }
        let config = layer.config
        for member in config.members! {
            switch member.key {
            case "name", "trainable", "dtype", "data_format": continue
            case _ where handled.contains(member.key): continue
            case _ where member.key.hasSuffix("_regularizer") || member.key.hasSuffix("_constraint"):
                if !member.value.isNull { throw fail(layer, "\(member.key) is set: regularizers and constraints are not supported") }
            default:
                if member.value.isNull || member.value == .bool(false) || member.value.number == 0 { continue }
                throw fail(layer, "setting \(member.key)=\(member.value.json) is not supported")
            }
        }
        if config["trainable"]?.bool == false { throw fail(layer, "trainable is false: frozen layers are not supported") }
        if let dtype = config["dtype"], !dtype.isNull, let name = dtypeName(dtype), name != "float32" {
            throw fail(layer, "dtype policy \(name): DPTrain computes in float32")
        }
        if let format = config["data_format"], !format.isNull, format.string != "channels_last" {
            throw fail(layer, "data_format \(format.json): DPTrain is channels_last only")
        }

        func number(_ key: String, default value: Double? = nil) throws -> Double {
            guard let v = config[key] else {
                if let value { return value }
                throw fail(layer, "no \(key)")
            }
            guard let n = v.number else { throw fail(layer, "\(key) \(v.json) is not a number") }
            return n
        }
        func flag(_ key: String, default value: Bool) throws -> Bool {
            guard let v = config[key] else { return value }
            guard let b = v.bool else { throw fail(layer, "\(key) \(v.json) is not true or false") }
            return b
        }
        func pair(_ key: String, default value: [Int]? = nil) throws -> [Int] {
            guard let v = config[key], !v.isNull else {
                if let value { return value }
                throw fail(layer, "no \(key)")
            }
            if let n = v.int { return [n, n] }
            guard let items = v.array, items.count == 2, let a = items[0].int, let b = items[1].int else {
                throw fail(layer, "\(key) \(v.json) is not one or two integers")
            }
            return [a, b]
        }
        func padding() throws -> ModelGraph.Padding {
            let v = config["padding"] ?? "valid"
            guard let p = v.string.flatMap({ ModelGraph.Padding(rawValue: $0.lowercased()) }) else {
                throw fail(layer, "padding \(v.json) is not supported (valid, same)")
            }
            return p
        }
        func activation(_ key: String = "activation") throws -> ModelGraph.Activation {
            let v = config[key] ?? .null
            if v.isNull { return .linear }
            guard let a = v.string.flatMap(ModelGraph.Activation.init(rawValue:)) else {
                throw fail(layer, "activation \(v.json) is not supported (\(Self.activations))")
            }
            return a
        }
        func seedNote() {
            if let seed = config["seed"], !seed.isNull {
                notes.append("\(file): layer '\(layer.name)' (\(layer.kerasClass)): seed \(seed.json) ignored: DPTrain draws its random numbers from --seed")
            }
        }
        /// A non-default initializer only matters when DPTrain must initialise the layer itself.
        func initializer(_ key: String, _ expected: String) throws {
            guard let v = config[key], !v.isNull else { return }
            let name = v.string ?? v["class_name"]?.string ?? v.json
            let isDefault = name == expected || name == KerasNames.snakeCase(expected)
            if isDefault {
                if let seed = v["config"]?["seed"], !seed.isNull {
                    notes.append("\(file): layer '\(layer.name)' (\(layer.kerasClass)): \(key) seed \(seed.json) ignored: \(hasWeights ? "the file's weights are used" : "DPTrain initialises from --seed")")
                }
                return
            }
            if hasWeights {
                notes.append("\(file): layer '\(layer.name)' (\(layer.kerasClass)): \(key) \(name) ignored: the file's weights are used")
            } else {
                throw fail(layer, "\(key) \(name) is not supported without weights (DPTrain initialises it as \(expected)); save the model with model.save() so its weights come along")
            }
        }

        switch layer.kerasClass {
        case "Conv2D":
            if try pair("dilation_rate", default: [1, 1]) != [1, 1] { throw fail(layer, "dilation_rate \(config["dilation_rate"]!.json): only 1 is supported") }
            if let groups = config["groups"], groups.int != 1 { throw fail(layer, "groups \(groups.json): only 1 is supported") }
            guard let filters = config["filters"]?.int else { throw fail(layer, "no filters") }
            try initializer("kernel_initializer", "GlorotUniform")
            try initializer("bias_initializer", "Zeros")
            return .conv2D(.init(filters: filters, kernel: try pair("kernel_size"), strides: try pair("strides", default: [1, 1]),
                                 padding: try padding(), activation: try activation(), useBias: try flag("use_bias", default: true)))
        case "Dense":
            guard let units = config["units"]?.int else { throw fail(layer, "no units") }
            try initializer("kernel_initializer", "GlorotUniform")
            try initializer("bias_initializer", "Zeros")
            return .dense(.init(units: units, activation: try activation(), useBias: try flag("use_bias", default: true)))
        case "MaxPooling2D", "AveragePooling2D":
            let size = try pair("pool_size", default: [2, 2])
            let pooling = ModelGraph.Pooling(size: size, strides: try pair("strides", default: size), padding: try padding())
            return layer.kerasClass == "MaxPooling2D" ? .maxPooling2D(pooling) : .averagePooling2D(pooling)
        case "GlobalAveragePooling2D", "GlobalMaxPooling2D":
            if try flag("keepdims", default: false) { throw fail(layer, "keepdims is true: only false is supported") }
            return layer.kerasClass == "GlobalAveragePooling2D" ? .globalAveragePooling2D : .globalMaxPooling2D
        case "Flatten":
            return .flatten
        case "Dropout":
            if let shape = config["noise_shape"], !shape.isNull { throw fail(layer, "noise_shape \(shape.json): only null is supported") }
            seedNote()
            return .dropout(rate: try number("rate"))
        case "BatchNormalization":
            let axis = config["axis"] ?? -1
            let axes = axis.array ?? [axis]
            guard axes.count == 1, let a = axes[0].int, a == -1 || a == 3 else {
                throw fail(layer, "axis \(axis.json): only the channel axis (-1 or 3) is supported")
            }
            if try flag("synchronized", default: false) {
                notes.append("\(file): layer '\(layer.name)' (\(layer.kerasClass)): synchronized ignored: DPTrain's batch statistics do not depend on the rank count")
            }
            if try flag("renorm", default: false) { throw fail(layer, "renorm is true: batch renormalization is not supported") }
            try initializer("gamma_initializer", "Ones")
            try initializer("beta_initializer", "Zeros")
            try initializer("moving_mean_initializer", "Zeros")
            try initializer("moving_variance_initializer", "Ones")
            return .batchNormalization(.init(momentum: try number("momentum", default: 0.99), epsilon: try number("epsilon", default: 1e-3),
                                             center: try flag("center", default: true), scale: try flag("scale", default: true)))
        case "Activation":
            return .activation(try activation())
        case "ReLU":
            if let v = config["max_value"], !v.isNull { throw fail(layer, "max_value \(v.json): only null is supported") }
            for key in ["negative_slope", "threshold"] where try number(key, default: 0) != 0 {
                throw fail(layer, "\(key) \(config[key]!.json): only 0 is supported")
            }
            return .relu
        case "Rescaling":
            for key in ["scale", "offset"] where config[key]?.array != nil {
                throw fail(layer, "\(key) \(config[key]!.json): only one number for every channel is supported")
            }
            return .rescaling(scale: try number("scale"), offset: try number("offset", default: 0))
        case "Add":
            return .add
        case "RandomFlip":
            let mode = config["mode"] ?? "horizontal_and_vertical"
            guard mode.string == "horizontal" else { throw fail(layer, "mode \(mode.json): only \"horizontal\" is supported") }
            seedNote()
            return .randomFlip
        case "RandomTranslation":
            func factor(_ key: String) throws -> [Double] {
                guard let v = config[key] else { throw fail(layer, "no \(key)") }
                if let f = v.number { return [-f, f] }
                guard let items = v.array, items.count == 2, let lo = items[0].number, let hi = items[1].number else {
                    throw fail(layer, "\(key) \(v.json) is not a number or a pair")
                }
                return [lo, hi]
            }
            let fillValue = config["fill_mode"] ?? "reflect"
            guard let fill = fillValue.string.flatMap(ModelGraph.RandomTranslation.Fill.init(rawValue:)) else {
                throw fail(layer, "fill_mode \(fillValue.json) is not supported (\(ModelGraph.RandomTranslation.Fill.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            let interpolationValue = config["interpolation"] ?? "bilinear"
            guard let interpolation = interpolationValue.string.flatMap(ModelGraph.RandomTranslation.Interpolation.init(rawValue:)) else {
                throw fail(layer, "interpolation \(interpolationValue.json) is not supported (bilinear, nearest)")
            }
            seedNote()
            return .randomTranslation(.init(height: try factor("height_factor"), width: try factor("width_factor"), fill: fill,
                                            interpolation: interpolation, fillValue: try number("fill_value", default: 0)))
        default:
            fatalError("\(layer.kerasClass) is in `handled` but not parsed")
        }
    }

    // MARK: Weights and compile config

    func readWeights(_ h5: HDF5File, _ graph: ModelGraph, _ resolved: [ModelGraph.Resolved]) throws -> [String: KerasModel.Weight] {
        let order = KerasOrder.layers(of: graph)
        let groups = KerasOrder.groups(order.map { $0 < 0 ? "InputLayer" : graph.nodes[$0].layer.kerasClass })
        var weights: [String: KerasModel.Weight] = [:]
        for (i, group) in zip(order, groups) where i >= 0 {
            let node = resolved[i]
            let what = "\(file): model.weights.h5: layer '\(node.node.name)' (\(node.node.layer.kerasClass))"
            let vars = group + "/vars"
            var names: [String] = []
            // Keras itself maps groups by their place, not by the `name` attribute it writes; reading
            // that attribute (a variable-length string) from a corrupt file ran into a memory error
            // inside libhdf5 1.10 (found by scripts/fuzz), so the shapes below are the check.
            if h5.kind(vars) == .group { names = try h5.members(vars) }
            guard names.count == node.variables.count else {
                throw KerasFileError("\(what): \(names.count) variables at \(vars), the layer has \(node.variables.count) (\(node.variables.map(\.path).joined(separator: ", ")))")
            }
            for (k, variable) in node.variables.enumerated() {
                let path = "\(vars)/\(k)"
                guard h5.kind(path) == .dataset else { throw KerasFileError("\(what): no dataset \(path)") }
                let shape = try h5.shape(path)
                guard shape == variable.shape else {
                    throw KerasFileError("\(what): \(path) has shape \(shape), \(variable.path) needs \(variable.shape)")
                }
                do {
                    weights[variable.path] = KerasModel.Weight(shape: shape, values: try h5.floats(path))
                } catch let error as HDF5File.Failure {
                    throw KerasFileError("\(what): \(error.description)")
                }
            }
        }
        return weights
    }

    func readOptimizer(_ h5: HDF5File) throws -> [KerasModel.Weight] {
        guard h5.kind("optimizer/vars") == .group else { return [] }
        let count = try h5.members("optimizer/vars").count
        return try (0..<count).map { i in
            let path = "optimizer/vars/\(i)"
            do {
                return KerasModel.Weight(shape: try h5.shape(path), values: try h5.floats(path))
            } catch let error as HDF5File.Failure {
                throw KerasFileError("\(file): model.weights.h5: \(error.description)")
            }
        }
    }

    func compile(_ value: KerasValue?) throws -> KerasCompile? {
        guard let value, let members = value.members, !members.isEmpty else { return nil }
        guard let optimizer = value["optimizer"], !optimizer.isNull else { return nil }
        let className: String
        var config: KerasValue = [:]
        if let name = optimizer.string {
            className = name
        } else if let name = optimizer["class_name"]?.string {
            className = name
            config = optimizer["config"] ?? [:]
        } else {
            throw fail("compile_config: an optimizer that is neither a name nor a Keras object: \(optimizer.json.prefix(80))")
        }
        let loss = value["loss"].flatMap { $0.isNull ? nil : $0 }
        return KerasCompile(optimizer: className, optimizerConfig: config, loss: loss, metrics: value["metrics"]?.array ?? [])
    }
}
