import Foundation
import NN

/// Weights as safetensors under Keras names and shapes (HWIO kernels, Flatten in H,W,C order),
/// so `safetensors.numpy.load_file` and a Keras model with the same layers read them as they are.
public enum ModelFile {
    public static let formatKey = "format"
    /// The model graph as JSON; files written before the layer graph hold `architecture`.
    public static let modelKey = "model"
    public static let architectureKey = "architecture"

    public static func tensors(of network: Network, metadata: [String: String] = [:]) throws -> SafeTensors {
        var file = SafeTensors()
        for t in network.tensors {
            let values = Array(network.parameters[t.offset..<(t.offset + t.count)])
            file.append(t.name, SafeTensors.Tensor(floats: values, shape: t.shape))
        }
        file.metadata = metadata
        file.metadata[formatKey] = file.metadata[formatKey] ?? "dptrain-model-1"
        file.metadata[modelKey] = try encode(network.graph)
        return file
    }

    /// The model a file was saved with, when dptrain wrote it.
    public static func model(of file: SafeTensors, name: String) throws -> ModelGraph? {
        if let json = file.metadata[modelKey] {
            do { return try JSONDecoder().decode(ModelGraph.self, from: Data(json.utf8)) } catch {
                throw FileError("\(name): its model metadata cannot be read")
            }
        }
        guard let json = file.metadata[architectureKey] else { return nil }
        do { return try JSONDecoder().decode(Architecture.self, from: Data(json.utf8)).graph() } catch {
            throw FileError("\(name): its architecture metadata cannot be read")
        }
    }

    /// Copies the file's weights into `network`; every tensor the network has must be present
    /// with the same shape. Errors name the file and the first tensor that differs.
    public static func load(_ file: SafeTensors, into network: Network, name: String) throws {
        for t in network.tensors {
            guard let tensor = file[t.name] else {
                throw FileError("\(name): has no tensor '\(t.name)'; it was saved from a different architecture")
            }
            guard tensor.shape == t.shape else {
                throw FileError("\(name): tensor '\(t.name)' has shape \(tensor.shape) but this architecture needs \(t.shape)")
            }
            guard let values = tensor.floats else { throw FileError("\(name): tensor '\(t.name)' is \(tensor.dtype), expected F32") }
            for i in 0..<t.count { network.parameters[t.offset + i] = values[i] }
        }
    }

    public static func encode<T: Encodable>(_ value: T) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }
}
