import Foundation

/// Four IDX files under the MNIST names: images N×H×W (idx3) or N×H×W×C (idx4) unsigned bytes,
/// labels N bytes. MNIST, Fashion-MNIST, KMNIST, EMNIST and a user's own IDX files load as they
/// are. A `SHA256SUMS.raw` manifest (the embedded MNIST has one) must match every file.
struct IDXSource: DataSource {
    enum File: CaseIterable {
        case trainImages, trainLabels, testImages, testLabels

        var names: [String] {
            switch self {
            case .trainImages: ["train-images-idx3-ubyte", "train-images-idx4-ubyte"]
            case .trainLabels: ["train-labels-idx1-ubyte"]
            case .testImages: ["t10k-images-idx3-ubyte", "t10k-images-idx4-ubyte"]
            case .testLabels: ["t10k-labels-idx1-ubyte"]
            }
        }
    }

    let directory: String
    /// Each kind's name and the file holding it (raw or .gz).
    let found: [(kind: File, name: String, path: String)]

    init(directory: String) throws(DataError) {
        self.directory = directory
        var found: [(File, String, String)] = []
        for kind in File.allCases {
            guard let hit = kind.names.lazy.flatMap({ name in [name, name + ".gz"].lazy.map { (name, joinPath(directory, $0)) } })
                .first(where: { FileManager.default.fileExists(atPath: $0.1) }) else {
                throw DataError("\(joinPath(directory, kind.names[0]))(.gz): no such file (the data directory needs train/t10k images and labels under the MNIST names)")
            }
            found.append((kind, hit.0, hit.1))
        }
        self.found = found
    }

    var files: [String] { found.map(\.path) + [joinPath(directory, "SHA256SUMS.raw")].filter { FileManager.default.fileExists(atPath: $0) } }

    func decode() throws(DataError) -> DecodedSet {
        let manifest = try Self.readManifest(directory)
        var loaded: [File: (name: String, file: IDXFile)] = [:]
        for (kind, name, path) in found {
            let file = try IDXFile(path: path)
            if let expected = manifest?[name], expected != file.sha256 {
                throw DataError("\(joinPath(directory, name)): SHA-256 of its content is \(file.sha256), the manifest says \(expected)")
            }
            loaded[kind] = (name, file)
        }
        var set = DecodedSet(train: try pair(loaded[.trainImages]!, loaded[.trainLabels]!),
                             test: try pair(loaded[.testImages]!, loaded[.testLabels]!))
        set.verifiedByManifest = manifest != nil
        return set
    }

    private func pair(_ images: (name: String, file: IDXFile), _ labels: (name: String, file: IDXFile)) throws(DataError) -> DecodedSplit {
        let imagePath = joinPath(directory, images.name), labelPath = joinPath(directory, labels.name)
        let dims = images.file.dimensions
        guard dims.count == 3 || dims.count == 4 else {
            throw DataError("\(imagePath): expected 3 or 4 dimensions (count, height, width[, channels]), found \(dims.count)")
        }
        guard labels.file.dimensions.count == 1 else {
            throw DataError("\(labelPath): expected 1 dimension (count), found \(labels.file.dimensions.count)")
        }
        guard dims[0] == labels.file.dimensions[0] else {
            throw DataError("\(labelPath): holds \(labels.file.dimensions[0]) labels but \(images.name) holds \(dims[0]) images")
        }
        guard dims[0] > 0 else { throw DataError("\(imagePath): holds no images") }
        guard dims.dropFirst().allSatisfy({ $0 > 0 }) else { throw DataError("\(imagePath): has an empty image shape \(Array(dims.dropFirst()))") }
        return DecodedSplit(pixels: images.file.bytes, pixelType: .uint8, labels: labels.file.bytes.map { Int32($0) },
                            height: dims[1], width: dims[2], channels: dims.count == 4 ? dims[3] : 1, labelSource: labelPath)
    }

    /// `SHA256SUMS.raw` lines: "<hex>  <name>".
    private static func readManifest(_ directory: String) throws(DataError) -> [String: String]? {
        let manifestPath = joinPath(directory, "SHA256SUMS.raw")
        guard let text = try? String(contentsOfFile: manifestPath, encoding: .utf8) else { return nil }
        var sums: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count == 2, parts[0].count == 64 else { throw DataError("\(manifestPath): malformed line '\(line)'") }
            sums[String(parts[1]).trimmingCharacters(in: CharacterSet(charactersIn: "*"))] = String(parts[0])
        }
        return sums
    }
}
