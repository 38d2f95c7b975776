import Foundation

/// One split as a reader decodes it: pixels NHWC (bytes, or little-endian float32), labels Int32.
public struct DecodedSplit: Sendable {
    public var pixels: [UInt8]
    public var pixelType: PixelType
    public var labels: [Int32]
    public var count, height, width, channels: Int
    /// The file (and entry) the labels came from, for messages about them.
    public var labelSource: String

    public init(pixels: [UInt8], pixelType: PixelType, labels: [Int32], height: Int, width: Int, channels: Int, labelSource: String) {
        (self.pixels, self.pixelType, self.labels, self.count) = (pixels, pixelType, labels, labels.count)
        (self.height, self.width, self.channels, self.labelSource) = (height, width, channels, labelSource)
    }

    public var imageDescription: String { "\(height)x\(width)x\(channels)" }
}

/// A whole set as a reader decodes it.
public struct DecodedSet: Sendable {
    public var train: DecodedSplit
    public var test: DecodedSplit
    /// Class names in label order, when the format has them (folder names, CIFAR's meta files).
    public var classNames: [String]?
    /// The format's own class count (CIFAR-10: 10), when it fixes one.
    public var classes: Int?
    public var verifiedByManifest = false

    public init(train: DecodedSplit, test: DecodedSplit, classNames: [String]? = nil, classes: Int? = nil) {
        (self.train, self.test, self.classNames, self.classes) = (train, test, classNames, classes ?? classNames?.count)
    }
}

/// The seam: one way of storing an image-classification set. A source names the files it reads
/// (their sizes and times key the decode cache) and decodes them; `Dataset` checks the result,
/// fingerprints it, caches it and hands it to training. The parsers behind each source are pure
/// functions from bytes to a value or a thrown `DataError`.
public protocol DataSource: Sendable {
    /// Every file the set is decoded from.
    var files: [String] { get }
    func decode() throws(DataError) -> DecodedSet
}

/// The formats `--data-format` names; `auto` chooses from what the path holds.
public enum DataFormat: String, Codable, CaseIterable, Sendable {
    case idx, npz, npy, cifar10, cifar100, images

    /// The format of what `path` holds, or nil when nothing matches; throws when several do.
    static func detect(_ path: String) throws(DataError) -> DataFormat {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DataError("\(path): no such file or directory")
        }
        if !isDirectory.boolValue {
            if path.lowercased().hasSuffix(".npz") { return .npz }
            throw DataError("\(path): a data file must be a NumPy .npz; a directory may hold IDX, .npy, CIFAR or image folders")
        }
        let entries = Set((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [])
        var found: [DataFormat] = []
        if entries.contains(where: { $0.hasPrefix("train-images-idx") || $0.hasPrefix("train-labels-idx") || $0.hasPrefix("t10k-") }) { found.append(.idx) }
        if entries.contains("x_train.npy") { found.append(.npy) }
        if entries.contains("data_batch_1.bin") || entries.contains("test_batch.bin") { found.append(.cifar10) }
        if entries.contains("train.bin") && entries.contains("test.bin") { found.append(.cifar100) }
        if found.isEmpty && ImageFolderSource.looksLikeImageFolders(path) { found.append(.images) }
        switch found.count {
        case 1: return found[0]
        case 0:
            throw DataError("\(path): holds no data set this reads (IDX files under the MNIST names, x_train.npy…, CIFAR batches, or one folder of PNG/JPEG images per class)")
        default:
            throw DataError("\(path): holds \(found.map(\.rawValue).joined(separator: " and ")) data; choose one with --data-format")
        }
    }
}

/// How images are converted to channels (Keras's `color_mode`).
public enum ColorMode: String, Codable, CaseIterable, Sendable {
    case grayscale, rgb, rgba
    public var channels: Int { switch self { case .grayscale: 1; case .rgb: 3; case .rgba: 4 } }
}

/// Everything besides the path that decides what a set decodes to; recorded with the run.
public struct DataLoading: Codable, Equatable, Sendable {
    /// nil: chosen from what the path holds.
    public var format: DataFormat?
    /// Image folders: how files are converted (Keras's default, rgb).
    public var colorMode: ColorMode?
    /// Image folders: resize every image of another size to this (height, width), bilinearly.
    public var imageSize: [Int]?
    /// Fixes the class count; labels outside 0…K−1 are then refused.
    public var classes: Int?
    /// One image folder without train/ and test/: the fraction held out as the test set.
    public var testSplit: Double?
    /// Where decoded sets are cached; nil: beside the data; "none": decode into memory each time.
    public var cacheDirectory: String?

    public init() {}
}

/// Reads a whole file, naming it when it cannot.
func readFile(_ path: String) throws(DataError) -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: path) else {
        let exists = FileManager.default.fileExists(atPath: path)
        throw DataError("\(path): \(exists ? "cannot be read" : "no such file")")
    }
    return [UInt8](data)
}

