import Foundation

/// An image-classification set stored as four IDX files under the MNIST names: images
/// N×H×W (idx3) or N×H×W×C (idx4) unsigned bytes, labels N bytes in 0…K−1. MNIST,
/// Fashion-MNIST, KMNIST, EMNIST and a user's own data converted to IDX all load as they are;
/// the model's input shape and class count come from here.
public struct Dataset: Sendable {
    /// The files of a data directory; each may be raw or gzipped, and images may be idx3 or idx4.
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

    public let directory: String
    public let train: LabeledImages
    public let test: LabeledImages
    public let classes: Int
    /// SHA-256 over the four raw files' sums: names the exact data a checkpoint was trained on.
    public let fingerprint: String
    /// True when every file matched the directory's SHA256SUMS.raw manifest.
    public let verifiedByManifest: Bool

    public var shape: DataShape {
        DataShape(height: train.height, width: train.width, channels: train.channels, classes: classes, source: directory)
    }

    /// Loads `directory`. When it has a `SHA256SUMS.raw` manifest (the embedded MNIST does),
    /// every file must match it.
    public init(directory: String) throws(DataError) {
        guard FileManager.default.fileExists(atPath: directory) else { throw DataError("\(directory): no such data directory") }
        let manifest = try Self.readManifest(directory)
        var loaded: [File: (name: String, file: IDXFile)] = [:]
        for kind in File.allCases {
            let (name, file) = try Self.load(kind, from: directory)
            if let expected = manifest?[name], expected != file.sha256 {
                throw DataError("\(Self.path(directory, name)): SHA-256 of its content is \(file.sha256), the manifest says \(expected)")
            }
            loaded[kind] = (name, file)
        }
        train = try Self.pair(loaded[.trainImages]!, loaded[.trainLabels]!, directory: directory)
        test = try Self.pair(loaded[.testImages]!, loaded[.testLabels]!, directory: directory)
        guard (train.height, train.width, train.channels) == (test.height, test.width, test.channels) else {
            throw DataError("\(directory): training images are \(train.height)x\(train.width)x\(train.channels) but test images \(test.height)x\(test.width)x\(test.channels)")
        }
        // The classes are the training labels' range; a test label beyond it names a class the
        // model never saw, which is a broken set rather than a bigger model.
        let maxLabel = Int(train.labels.max() ?? 0)
        guard maxLabel >= 1 else { throw DataError("\(directory): every training label is 0; a classifier needs at least 2 classes") }
        classes = maxLabel + 1
        let classCount = classes
        if let bad = test.labels.firstIndex(where: { Int($0) >= classCount }) {
            throw DataError("\(Self.path(directory, loaded[.testLabels]!.name)): label \(test.labels[bad]) at index \(bad) is outside 0-\(classCount - 1), the training labels' range")
        }
        self.directory = directory
        fingerprint = SHA256.hex(Array(File.allCases.map { loaded[$0]!.file.sha256 }.joined().utf8))
        verifiedByManifest = manifest != nil
    }

    static func path(_ directory: String, _ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    /// The first of the file's names present, raw or `.gz`.
    private static func load(_ kind: File, from directory: String) throws(DataError) -> (String, IDXFile) {
        for name in kind.names {
            for candidate in [name, name + ".gz"] where FileManager.default.fileExists(atPath: path(directory, candidate)) {
                return (name, try IDXFile(path: path(directory, candidate)))
            }
        }
        throw DataError("\(path(directory, kind.names[0]))(.gz): no such file (the data directory needs train/t10k images and labels under the MNIST names)")
    }

    private static func pair(_ images: (name: String, file: IDXFile), _ labels: (name: String, file: IDXFile),
                             directory: String) throws(DataError) -> LabeledImages {
        let imagePath = path(directory, images.name), labelPath = path(directory, labels.name)
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
        return LabeledImages(images: images.file.bytes, labels: labels.file.bytes, count: dims[0],
                             height: dims[1], width: dims[2], channels: dims.count == 4 ? dims[3] : 1)
    }

    /// `SHA256SUMS.raw` lines: "<hex>  <name>".
    private static func readManifest(_ directory: String) throws(DataError) -> [String: String]? {
        let manifestPath = path(directory, "SHA256SUMS.raw")
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

extension Dataset {
    /// Where the embedded MNIST is looked for when no `--data-dir` is given, in order:
    /// `$DPTRAIN_DATA`; `data/mnist` beside the executable or in one of its parent directories
    /// (a build inside a clone); `share/dptrain/mnist` there (an installed layout); then the
    /// working directory. So `dptrain train` works from any directory.
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment,
                                        executable: String = Self.executablePath) throws(DataError) -> String {
        if let override = environment["DPTRAIN_DATA"], !override.isEmpty { return override }
        var candidates: [String] = []
        var url = URL(fileURLWithPath: executable).deletingLastPathComponent()
        while true {
            candidates += [url.appendingPathComponent("data/mnist").path, url.appendingPathComponent("share/dptrain/mnist").path]
            if url.path == "/" { break }
            url.deleteLastPathComponent()
        }
        candidates.append("data/mnist")
        if let found = candidates.first(where: { FileManager.default.fileExists(atPath: path($0, "SHA256SUMS.raw")) }) { return found }
        throw DataError("no data directory given and the embedded MNIST (data/mnist) is not beside \(executable): pass --data-dir DIR, set DPTRAIN_DATA, or download it with scripts/fetch-mnist DIR")
    }

    /// The running executable, through /proc so a symlinked build folder resolves.
    public static var executablePath: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }
}

/// What a model must take to read some data: its image shape and, where known, class count.
public struct DataShape: Sendable, CustomStringConvertible {
    public var height, width, channels: Int
    public var classes: Int?
    /// The directory or file the data came from, for messages.
    public var source: String

    public init(height: Int, width: Int, channels: Int, classes: Int?, source: String) {
        (self.height, self.width, self.channels, self.classes, self.source) = (height, width, channels, classes, source)
    }

    /// "28x28x1".
    public var imageDescription: String { "\(height)x\(width)x\(channels)" }
    /// "28x28x1 images in 10 classes".
    public var description: String { imageDescription + " images" + (classes.map { " in \($0) classes" } ?? "") }
}
