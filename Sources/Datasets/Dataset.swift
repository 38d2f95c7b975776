import Foundation

/// An image-classification set, whatever it was stored as: the train and test splits, the
/// class count and names, and a fingerprint of the decoded content. Loading picks the format's
/// `DataSource`, decodes it once per node into a cache file, and maps that file read-only, so
/// the ranks of a node share one copy.
public struct Dataset: Sendable {
    /// The file or directory given.
    public let directory: String
    public let format: DataFormat
    public let train: LabeledImages
    public let test: LabeledImages
    public let classes: Int
    public let classNames: [String]?
    /// SHA-256 of the decoded content (shape, pixels, labels): the same for the same images
    /// in the same order whichever format holds them, so a checkpoint written on the IDX copy of
    /// MNIST resumes on its .npz copy.
    public let fingerprint: String
    /// True when every file matched the directory's SHA256SUMS.raw manifest.
    public let verifiedByManifest: Bool
    /// Lines to print once (e.g. classes without an example).
    public let warnings: [String]
    /// The cache file mapped, when there is one.
    public let cacheFile: String?

    public var shape: DataShape {
        DataShape(height: train.height, width: train.width, channels: train.channels, classes: classes, source: directory)
    }

    public init(directory: String) throws(DataError) { try self.init(path: directory, loading: DataLoading()) }

    /// Loads `path` (nil: the embedded MNIST).
    public init(path: String?, loading: DataLoading?) throws(DataError) {
        let path = if let path { path } else { try Self.defaultDirectory() }
        let loading = loading ?? DataLoading()
        let format = if let format = loading.format { format } else { try DataFormat.detect(path) }
        let source = try Self.source(format, path: path, loading: loading)
        let cached = try DataCache.load(source: source, format: format, path: path, loading: loading)
        directory = path
        self.format = format
        (train, test, cacheFile) = (cached.train, cached.test, cached.file)
        (classes, classNames, fingerprint) = (cached.header.classes, cached.header.classNames, cached.header.fingerprint)
        (verifiedByManifest, warnings) = (cached.header.verifiedByManifest, cached.header.warnings)
    }

    static func source(_ format: DataFormat, path: String, loading: DataLoading) throws(DataError) -> any DataSource {
        switch format {
        case .idx: try IDXSource(directory: path)
        case .npz: NumPySource(path: path, archive: true)
        case .npy: NumPySource(path: path, archive: false)
        case .cifar10: try CIFARSource(directory: path, kind: .cifar10)
        case .cifar100: try CIFARSource(directory: path, kind: .cifar100)
        case .images: try ImageFolderSource(directory: path, loading: loading)
        }
    }

    /// The checks every format shares, on the decoded set: the splits agree in shape, labels lie
    /// in 0…K−1, and K is `--classes`, the format's own count, or the training labels' range.
    /// Returns the class count and warnings.
    static func check(_ set: DecodedSet, path: String, classes fixed: Int?) throws(DataError) -> (Int, [String]) {
        let (train, test) = (set.train, set.test)
        guard train.count > 0 else { throw DataError("\(path): the training set holds no images") }
        guard test.count > 0 else { throw DataError("\(path): the test set holds no images") }
        guard (train.height, train.width, train.channels) == (test.height, test.width, test.channels) else {
            throw DataError("\(path): training images are \(train.imageDescription) but test images \(test.imageDescription)\(set.classNames != nil ? "; give --image-size H,W to resize them" : "")")
        }
        let classes: Int
        if let fixed = fixed ?? set.classes {
            classes = fixed
            let flag = set.classes != nil && fixed == set.classes ? "the format's \(fixed) classes" : "--classes \(fixed)"
            for split in [train, test] {
                if let bad = split.labels.firstIndex(where: { $0 < 0 || Int($0) >= classes }) {
                    throw DataError("\(split.labelSource): label \(split.labels[bad]) at index \(bad) is outside 0-\(classes - 1) (\(flag))")
                }
            }
        } else {
            if let bad = train.labels.firstIndex(where: { $0 < 0 }) {
                throw DataError("\(train.labelSource): label \(train.labels[bad]) at index \(bad) is negative")
            }
            // The classes are the training labels' range; a test label beyond it names a class
            // the model never saw, which is a broken set rather than a bigger model.
            classes = Int(train.labels.max() ?? 0) + 1
            if let bad = test.labels.firstIndex(where: { $0 < 0 || Int($0) >= classes }) {
                throw DataError("\(test.labelSource): label \(test.labels[bad]) at index \(bad) is outside 0-\(classes - 1), the training labels' range")
            }
        }
        guard classes >= 2 else { throw DataError("\(train.labelSource): every training label is 0; a classifier needs at least 2 classes") }
        if let names = set.classNames, names.count != classes {
            throw DataError("\(path): names \(names.count) classes but the labels need \(classes)")
        }
        var seen = [Bool](repeating: false, count: classes)
        for label in train.labels { seen[Int(label)] = true }
        let empty = seen.indices.filter { !seen[$0] }
        var warnings: [String] = []
        if !empty.isEmpty {
            let listed = empty.prefix(10).map { c in set.classNames.map { "\(c) (\($0[c]))" } ?? "\(c)" }.joined(separator: ", ")
            warnings.append("\(train.labelSource): no training example of class\(empty.count > 1 ? "es" : "") \(listed)\(empty.count > 10 ? ", …" : "") of 0-\(classes - 1); give --classes K if the count is right, or fix the labels")
        }
        return (classes, warnings)
    }

    /// SHA-256 of what training sees: the image shape and pixel type, then each split's pixels
    /// and little-endian Int32 labels.
    static func fingerprint(_ set: DecodedSet) -> String {
        var hasher = SHA256()
        hasher.update(Array("dptrain-data-v1 \(set.train.imageDescription) \(set.train.pixelType.rawValue)\n".utf8))
        for split in [set.train, set.test] {
            hasher.update(Array("\(split.count)\n".utf8))
            hasher.update(split.pixels)
            split.labels.withUnsafeBytes { hasher.update($0) }
        }
        return hasher.finalize().map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

extension Dataset {
    /// Where the embedded MNIST is looked for when no `--data` is given, in order:
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
        if let found = candidates.first(where: { FileManager.default.fileExists(atPath: joinPath($0, "SHA256SUMS.raw")) }) { return found }
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
