import Foundation
import Graph
import ZIPFoundation

extension KerasModel {
    /// Writes `graph` with `weights` (by variable path, one for every variable of
    /// `graph.resolve()`) as a `.keras` archive that Keras 3.15's `keras.saving.load_model` opens
    /// as it is: config.json in Keras's own structure with its defaults, metadata.json, and
    /// model.weights.h5 written by the HDF5 library. With `compile`, the optimizer's state goes
    /// along: `optimizerVariables` in Keras's order (as `read` returns them), or when nil a fresh
    /// state (iteration 0, the learning rate, zero slots) for SGD, Adam, AdamW and RMSprop, so
    /// Keras loads it without a warning. Atomic: written to `path + ".tmp"`, then renamed.
    public static func write(graph: ModelGraph, weights: [String: Weight], compile: KerasCompile?,
                             optimizerVariables: [Weight]? = nil, to path: String) throws {
        let resolved: [ModelGraph.Resolved]
        do {
            resolved = try graph.resolve()
        } catch let error as ModelGraph.ShapeError {
            throw KerasFileError("\(path): \(error.description)")
        }
        let variables = resolved.flatMap(\.variables)
        for variable in variables {
            guard let weight = weights[variable.path] else { throw KerasFileError("\(path): no weights for \(variable.path)") }
            guard weight.shape == variable.shape, weight.values.count == variable.count else {
                throw KerasFileError("\(path): \(variable.path) has shape \(weight.shape) with \(weight.values.count) values, the model needs \(variable.shape)")
            }
        }
        let known = Set(variables.map(\.path))
        if let stray = weights.keys.sorted().first(where: { !known.contains($0) }) {
            throw KerasFileError("\(path): weights for \(stray), which is no variable of the model")
        }
        let order = KerasOrder.layers(of: graph)
        if let stray = graph.nodes.indices.first(where: { !order.contains($0) }) {
            let node = graph.nodes[stray]
            throw KerasFileError("\(path): layer '\(node.name)' (\(node.layer.kerasClass)) does not lead to the output '\(graph.nodes.last!.name)'; Keras would drop it")
        }
        if !graph.functional {
            for (i, node) in graph.nodes.enumerated() where node.inputs != [i == 0 ? graph.inputName : graph.nodes[i - 1].name] {
                throw KerasFileError("\(path): layer '\(node.name)' (\(node.layer.kerasClass)) does not read the layer before it: a Sequential model is a chain (set functional for a graph)")
            }
        }

        var optimizer: (name: String, variables: [Weight])?
        if let compile {
            let trainable = order.filter { $0 >= 0 }.flatMap { resolved[$0].variables.filter(\.trainable).map(\.shape) }
            let fresh = KerasOptimizerState.fresh(compile, trainable: trainable)
            if let given = optimizerVariables {
                if let fresh, given.map(\.shape) != fresh.map(\.shape) {
                    throw KerasFileError("\(path): \(given.count) optimizer variables of shapes \(given.map(\.shape)), \(compile.optimizer) on this model has \(fresh.count) of shapes \(fresh.map(\.shape))")
                }
                for weight in given where weight.shape.reduce(1, *) != weight.values.count {
                    throw KerasFileError("\(path): an optimizer variable of shape \(weight.shape) with \(weight.values.count) values")
                }
            }
            if let variables = optimizerVariables ?? fresh {
                optimizer = (compile.optimizerConfig["name"]?.string ?? compile.optimizer.lowercased(), variables)
            }
        }
        let config = KerasConfig.model(graph, resolved, compile)
        let metadata: KerasValue = ["keras_version": .string(kerasVersionWritten), "date_saved": .string(dateSaved())]
        let h5: Data
        do {
            h5 = try weightsFile(graph, resolved, weights, optimizer)
        } catch let error as HDF5File.Failure {
            throw KerasFileError("\(path): \(error.description)")
        }

        let archive = try Archive(accessMode: .create)
        // Keras's order, stored (not deflated) as Keras stores them.
        for (name, data) in [("metadata.json", Data(metadata.json.utf8)), ("config.json", Data(config.json.utf8)), ("model.weights.h5", h5)] {
            try archive.addEntry(with: name, type: .file, uncompressedSize: Int64(data.count), compressionMethod: .none) { position, size in
                data.subdata(in: Int(position)..<(Int(position) + size))
            }
        }
        guard let bytes = archive.data else { throw KerasFileError("\(path): the archive could not be made") }
        try writeAtomically(bytes, to: path)
    }

    static func dateSaved() -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "yyyy-MM-dd@HH:mm:ss"
        return formatter.string(from: Date())
    }

    /// model.weights.h5 as Keras's H5IOStore lays it out: `layers/<group>/vars/<i>` per layer in
    /// `model.layers` order (each `vars` group named after its layer), and the model's own empty `vars`.
    static func weightsFile(_ graph: ModelGraph, _ resolved: [ModelGraph.Resolved], _ weights: [String: Weight],
                            _ optimizer: (name: String, variables: [Weight])?) throws -> Data {
        let h5 = try HDF5File.create()
        let order = KerasOrder.layers(of: graph)
        let groups = KerasOrder.groups(order.map { $0 < 0 ? "InputLayer" : graph.nodes[$0].layer.kerasClass })
        try h5.createGroup("layers")
        for (i, group) in zip(order, groups) {
            try h5.createGroup(group)
            try h5.createGroup(group + "/vars")
            try h5.setAttribute(group + "/vars", "name", i < 0 ? graph.inputName : graph.nodes[i].name)
            guard i >= 0 else { continue }
            for (k, variable) in resolved[i].variables.enumerated() {
                try h5.write("\(group)/vars/\(k)", shape: variable.shape, values: weights[variable.path]!.values)
            }
        }
        if let optimizer {
            try h5.createGroup("optimizer")
            try h5.createGroup("optimizer/vars")
            try h5.setAttribute("optimizer/vars", "name", optimizer.name)
            for (k, variable) in optimizer.variables.enumerated() {
                try h5.write("optimizer/vars/\(k)", shape: variable.shape, values: variable.values)
            }
        }
        try h5.createGroup("vars")
        try h5.setAttribute("vars", "name", graph.name)
        return try h5.image()
    }

    static func writeAtomically(_ data: Data, to path: String) throws {
        let temporary = path + ".tmp"
        func reason() -> String { String(cString: strerror(errno)) }
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw KerasFileError("\(path): cannot create \(temporary) (\(reason()))") }
        var ok = data.withUnsafeBytes { buffer -> Bool in
            var written = 0
            while written < buffer.count {
                let n = Foundation.write(fd, buffer.baseAddress! + written, buffer.count - written)
                if n <= 0 { return false }
                written += n
            }
            return true
        }
        ok = ok && fsync(fd) == 0
        let failure = ok ? "" : reason()
        close(fd)
        guard ok, rename(temporary, path) == 0 else {
            let why = ok ? reason() : failure
            unlink(temporary)
            throw KerasFileError("\(path): cannot write (\(why))")
        }
    }
}

/// The variables Keras 3.15's optimizers save (`optimizer.variables`): the iteration count, the
/// learning rate unless it is a schedule, then the slots of each trainable variable in
/// `model.trainable_variables` order — Adam interleaves momentum and velocity per variable,
/// RMSprop lists all velocities, then momentums, then average gradients.
enum KerasOptimizerState {
    static func fresh(_ compile: KerasCompile, trainable: [[Int]]) -> [KerasModel.Weight]? {
        let config = compile.optimizerConfig
        // Moving averages of the weights and accumulated gradients add variables not laid out here.
        if config["use_ema"]?.bool == true { return nil }
        if let steps = config["gradient_accumulation_steps"], !steps.isNull { return nil }
        let defaultRate: Double
        var slots: [[String]]
        switch compile.optimizer {
        case "SGD":
            defaultRate = 0.01
            slots = (config["momentum"]?.number ?? 0) != 0 ? [["momentum"]] : []
        case "Adam", "AdamW":
            defaultRate = 0.001
            slots = [["momentum", "velocity"]]
            if config["amsgrad"]?.bool == true { slots.append(["velocity_hat"]) }
        case "RMSprop":
            defaultRate = 0.001
            slots = [["velocity"]]
            if (config["momentum"]?.number ?? 0) > 0 { slots.append(["momentum"]) }
            if config["centered"]?.bool == true { slots.append(["average_gradient"]) }
        default:
            return nil
        }
        var variables = [KerasModel.Weight(shape: [], values: [0])]
        let rate = config["learning_rate"] ?? .double(defaultRate)
        if let r = rate.number {
            variables.append(.init(shape: [], values: [Float(r)]))
        } else if rate.members == nil {
            return nil
        }
        for group in slots {
            for shape in trainable {
                for _ in group { variables.append(.init(shape: shape, values: Array(repeating: 0, count: shape.reduce(1, *)))) }
            }
        }
        return variables
    }
}

/// config.json: Keras 3.15's serialisation of each layer, defaults included.
enum KerasConfig {
    static let policy: KerasValue = ["module": "keras", "class_name": "DTypePolicy", "config": ["name": "float32"], "registered_name": nil]

    static func initializer(_ className: String) -> KerasValue {
        let config: KerasValue = className == "GlorotUniform" ? ["seed": nil, "input_axes": nil, "output_axes": nil] : [:]
        return ["module": "keras.initializers", "class_name": .string(className), "config": config, "registered_name": nil]
    }

    static func ints(_ values: [Int]) -> KerasValue { .array(values.map { .int($0) }) }
    static func batch(_ shape: [Int]) -> KerasValue { .array([.null] + shape.map { .int($0) }) }

    static func model(_ graph: ModelGraph, _ resolved: [ModelGraph.Resolved], _ compile: KerasCompile?) -> KerasValue {
        let input: KerasValue = [
            "module": "keras.layers", "class_name": "InputLayer",
            "config": ["batch_shape": batch(graph.input), "dtype": "float32", "sparse": false, "ragged": false,
                       "name": .string(graph.inputName), "optional": false],
            "registered_name": nil,
        ]
        var members: [KerasValue.Member]
        if graph.functional {
            var shapes: [String: [Int]] = [graph.inputName: graph.input]
            for r in resolved { shapes[r.node.name] = r.outputShape }
            var layers: [KerasValue] = []
            for i in KerasOrder.layers(of: graph) {
                guard i >= 0 else {
                    layers.append(appending(input, ["name": .string(graph.inputName), "inbound_nodes": []]))
                    continue
                }
                let node = graph.nodes[i]
                let tensors: [KerasValue] = node.inputs.map { source in
                    ["class_name": "__keras_tensor__", "config": ["shape": batch(shapes[source]!), "dtype": "float32",
                                                                  "keras_history": [.string(source), 0, 0]]]
                }
                let kwargs: KerasValue = switch node.layer {
                case .batchNormalization: ["mask": nil]
                case .dropout: ["training": false]
                case .randomFlip, .randomTranslation: ["training": true]
                default: [:]
                }
                let args: KerasValue = node.layer == .add ? [.array(tensors)] : [tensors[0]]
                layers.append(appending(layer(resolved[i]), ["name": .string(node.name), "inbound_nodes": [["args": args, "kwargs": kwargs]]]))
            }
            members = [
                .init("module", "keras.src.models.functional"), .init("class_name", "Functional"),
                .init("config", ["name": .string(graph.name), "trainable": true, "layers": .array(layers),
                                 "input_layers": [.string(graph.inputName), 0, 0],
                                 "output_layers": [.string(graph.nodes.last!.name), 0, 0]]),
                .init("registered_name", "Functional"), .init("build_config", ["input_shape": nil]),
            ]
        } else {
            members = [
                .init("module", "keras"), .init("class_name", "Sequential"),
                .init("config", ["name": .string(graph.name), "trainable": true, "dtype": policy,
                                 "layers": .array([input] + resolved.map(layer)), "build_input_shape": batch(graph.input)]),
                .init("registered_name", nil), .init("build_config", ["input_shape": batch(graph.input)]),
            ]
        }
        if let compile {
            let optimizer: KerasValue = ["module": "keras.optimizers", "class_name": .string(compile.optimizer),
                                         "config": compile.optimizerConfig, "registered_name": nil]
            members.append(.init("compile_config", [
                "optimizer": optimizer, "loss": compile.loss ?? nil, "loss_weights": nil,
                "metrics": compile.metrics.isEmpty ? nil : .array(compile.metrics), "weighted_metrics": nil,
                "run_eagerly": false, "steps_per_execution": 1, "jit_compile": "auto",
            ]))
        }
        return .object(members)
    }

    static func appending(_ value: KerasValue, _ more: KerasValue) -> KerasValue {
        .object((value.members ?? []) + (more.members ?? []))
    }

    /// One layer as `serialize_keras_object` writes it, with `build_config` where Keras records one.
    static func layer(_ r: ModelGraph.Resolved) -> KerasValue {
        let head: [KerasValue.Member] = [.init("name", .string(r.node.name)), .init("trainable", true), .init("dtype", policy)]
        var built = true
        let settings: KerasValue
        switch r.node.layer {
        case .conv2D(let c):
            settings = [
                "filters": .int(c.filters), "kernel_size": ints(c.kernel), "strides": ints(c.strides),
                "padding": .string(c.padding.rawValue), "data_format": "channels_last", "dilation_rate": [1, 1], "groups": 1,
                "activation": .string(c.activation.rawValue), "use_bias": .bool(c.useBias),
                "kernel_initializer": initializer("GlorotUniform"), "bias_initializer": initializer("Zeros"),
                "kernel_regularizer": nil, "bias_regularizer": nil, "activity_regularizer": nil,
                "kernel_constraint": nil, "bias_constraint": nil,
            ]
        case .dense(let d):
            settings = [
                "units": .int(d.units), "activation": .string(d.activation.rawValue), "use_bias": .bool(d.useBias),
                "kernel_initializer": initializer("GlorotUniform"), "bias_initializer": initializer("Zeros"),
                "kernel_regularizer": nil, "bias_regularizer": nil, "kernel_constraint": nil, "bias_constraint": nil,
                "quantization_config": nil,
            ]
        case .maxPooling2D(let p), .averagePooling2D(let p):
            built = false
            settings = ["pool_size": ints(p.size), "padding": .string(p.padding.rawValue), "strides": ints(p.strides), "data_format": "channels_last"]
        case .globalAveragePooling2D, .globalMaxPooling2D:
            built = false
            settings = ["data_format": "channels_last", "keepdims": false]
        case .flatten:
            settings = ["data_format": "channels_last"]
        case .dropout(let rate):
            built = false
            settings = ["rate": .double(rate), "seed": nil, "noise_shape": nil]
        case .batchNormalization(let b):
            settings = [
                "axis": -1, "momentum": .double(b.momentum), "epsilon": .double(b.epsilon), "center": .bool(b.center), "scale": .bool(b.scale),
                "beta_initializer": initializer("Zeros"), "gamma_initializer": initializer("Ones"),
                "moving_mean_initializer": initializer("Zeros"), "moving_variance_initializer": initializer("Ones"),
                "beta_regularizer": nil, "gamma_regularizer": nil, "beta_constraint": nil, "gamma_constraint": nil,
                "synchronized": false, "renorm": false, "renorm_clipping": nil, "renorm_momentum": 0.99,
            ]
        case .activation(let a):
            built = false
            settings = ["activation": .string(a.rawValue)]
        case .relu:
            built = false
            settings = ["max_value": nil, "negative_slope": 0.0, "threshold": 0.0]
        case .rescaling(let scale, let offset):
            settings = ["scale": .double(scale), "offset": .double(offset)]
        case .add:
            settings = [:]
        case .randomFlip:
            settings = ["data_format": "channels_last", "seed": nil, "mode": "horizontal"]
        case .randomTranslation(let t):
            func factor(_ f: [Double]) -> KerasValue { f[0] == -f[1] ? .double(f[1]) : [.double(f[0]), .double(f[1])] }
            settings = [
                "data_format": "channels_last", "height_factor": factor(t.height), "width_factor": factor(t.width),
                "fill_mode": .string(t.fill.rawValue), "interpolation": .string(t.interpolation.rawValue), "seed": nil,
                "fill_value": .double(t.fillValue),
            ]
        }
        var members: [KerasValue.Member] = [
            .init("module", "keras.layers"), .init("class_name", .string(r.node.layer.kerasClass)),
            .init("config", .object(head + (settings.members ?? []))), .init("registered_name", nil),
        ]
        if built {
            let shapes = r.inputShapes.map(batch)
            members.append(.init("build_config", ["input_shape": r.node.layer == .add ? .array(shapes) : shapes[0]]))
        }
        return .object(members)
    }
}
