import KerasFiles
import NN

/// A Keras model's `compile_config` as DPTrain's settings: the optimizer with its settings and
/// learning rate, and the loss, which must be the categorical cross-entropy DPTrain computes.
public struct KerasTrainingSettings: Equatable, Sendable {
    public var optimizer: OptimizerSettings
    public var learningRate: Float

    /// Throws one line naming the file and the setting DPTrain cannot honour.
    public init(_ compile: KerasCompile, file: String) throws {
        func fail(_ message: String) -> TrainingError { TrainingError("\(file): compile_config: \(message)") }
        let name = compile.lossName ?? "categorical_crossentropy"
        guard ["categorical_crossentropy", "sparse_categorical_crossentropy"].contains(name) else {
            throw fail("loss '\(name)' is not supported (DPTrain trains with categorical cross-entropy on a softmax)")
        }
        if compile.loss?["config"]?["from_logits"]?.bool == true { throw fail("from_logits=True is not supported: end the model with a softmax") }
        guard let kind = ["sgd": OptimizerKind.sgd, "adam": .adam, "adamw": .adamw, "rmsprop": .rmsprop][compile.optimizer.lowercased()] else {
            throw fail("optimizer '\(compile.optimizer)' is not supported (SGD, Adam, AdamW and RMSprop are)")
        }
        let c = compile.optimizerConfig
        var settings = OptimizerSettings(kind: kind)
        guard let rate = c["learning_rate"]?.number else {
            throw fail("\(compile.optimizer)'s learning_rate is a schedule; give it with --lr and --lr-schedule instead")
        }
        for key in ["clipnorm", "clipvalue", "global_clipnorm", "loss_scale_factor", "gradient_accumulation_steps"] where !(c[key]?.isNull ?? true) {
            throw fail("\(compile.optimizer)'s \(key) is not supported")
        }
        if c["use_ema"]?.bool == true { throw fail("\(compile.optimizer)'s use_ema is not supported") }
        if c["amsgrad"]?.bool == true { throw fail("Adam's amsgrad is not supported") }
        if let v = c["momentum"]?.number { settings.momentum = v }
        if let v = c["nesterov"]?.bool { settings.nesterov = v }
        if let v = c["beta_1"]?.number { settings.beta1 = v }
        if let v = c["beta_2"]?.number { settings.beta2 = v }
        if let v = c["epsilon"]?.number { settings.epsilon = v }
        if let v = c["rho"]?.number { settings.rho = v }
        if let v = c["centered"]?.bool { settings.centered = v }
        if let v = c["weight_decay"]?.number { settings.weightDecay = v }
        do { try settings.validate() } catch { throw fail("\(error)") }
        (optimizer, learningRate) = (settings, Float(rate))
    }
}

/// A model file a user hands to `--model`: a `.keras` archive or `model.to_json()`'s JSON.
public struct UserModel: Sendable {
    public let path: String
    public let keras: KerasModel

    public init(path: String) throws {
        self.path = path
        keras = try KerasModel.read(path: path)
    }

    /// Copies the archive's weights into `network` (Keras's initialisation, or a trained model);
    /// a file with none leaves the network as it is.
    func loadWeights(into network: Network) throws {
        guard !keras.weights.isEmpty else { return }
        for t in network.tensors {
            guard let w = keras.weights[t.name] else { throw TrainingError("\(path): has no weights for '\(t.name)'") }
            guard w.shape == t.shape, w.values.count == t.count else {
                throw TrainingError("\(path): '\(t.name)' has shape \(w.shape), the layer needs \(t.shape)")
            }
            for i in 0..<t.count { network.parameters[t.offset + i] = w.values[i] }
        }
    }
}
