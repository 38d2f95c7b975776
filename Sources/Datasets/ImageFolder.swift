import Foundation
import ImageDecoders

/// An image decoded to bytes, HWC.
public struct DecodedImage: Sendable {
    public var pixels: [UInt8]
    public var height, width, channels: Int

    public init(pixels: [UInt8], height: Int, width: Int, channels: Int) {
        (self.pixels, self.height, self.width, self.channels) = (pixels, height, width, channels)
    }
}

/// Decodes a PNG or JPEG file's bytes with libpng or libjpeg-turbo, converted to `channels`
/// by the library.
public func decodeImage(bytes: [UInt8], channels: Int, name: String) throws(DataError) -> DecodedImage {
    var pixels: UnsafeMutablePointer<UInt8>?
    var width: Int32 = 0, height: Int32 = 0
    var message = [CChar](repeating: 0, count: 256)
    let status = bytes.withUnsafeBufferPointer { image_decode($0.baseAddress, $0.count, Int32(channels), &pixels, &width, &height, &message, message.count) }
    guard status == 0, let pixels else { throw DataError("\(name): does not decode: \(String(cString: message))") }
    defer { image_free(pixels) }
    guard width > 0, height > 0 else { throw DataError("\(name): is an empty image") }
    let count = Int(width) * Int(height) * channels
    return DecodedImage(pixels: Array(UnsafeBufferPointer(start: pixels, count: count)), height: Int(height), width: Int(width), channels: channels)
}

/// Bilinear resizing as Keras does it (`tf.image.resize`, half-pixel centres, no antialiasing),
/// to floats scaled by 1/255 like every byte image.
public func resizeBilinear(_ image: DecodedImage, height: Int, width: Int) -> [Float] {
    struct Tap { var lower, upper: Int; var lerp: Float }
    func taps(out: Int, in size: Int) -> [Tap] {
        let scale = Float(size) / Float(out)
        return (0..<out).map { i in
            let x = (Float(i) + 0.5) * scale - 0.5
            let floor = x.rounded(.down)
            return Tap(lower: max(Int(floor), 0), upper: min(Int(x.rounded(.up)), size - 1), lerp: x - floor)
        }
    }
    let ys = taps(out: height, in: image.height), xs = taps(out: width, in: image.width)
    let c = image.channels, rowStride = image.width * c
    var out = [Float](repeating: 0, count: height * width * c)
    image.pixels.withUnsafeBufferPointer { p in
        for (oy, ty) in ys.enumerated() {
            for (ox, tx) in xs.enumerated() {
                for ch in 0..<c {
                    let tl = Float(p[ty.lower * rowStride + tx.lower * c + ch]), tr = Float(p[ty.lower * rowStride + tx.upper * c + ch])
                    let bl = Float(p[ty.upper * rowStride + tx.lower * c + ch]), br = Float(p[ty.upper * rowStride + tx.upper * c + ch])
                    let top = tl + (tr - tl) * tx.lerp, bottom = bl + (br - bl) * tx.lerp
                    out[(oy * width + ox) * c + ch] = (top + (bottom - top) * ty.lerp) * (1 / 255)
                }
            }
        }
    }
    return out
}

/// Decodes image files into one split: bytes when every image has the size wanted, else floats
/// (the ones resized, and the others scaled the same way as a gathered byte).
func decodeImages(_ paths: [String], labels: [Int32], colorMode: ColorMode, imageSize: [Int]?, labelSource: String) throws(DataError) -> DecodedSplit {
    var images: [DecodedImage] = []
    images.reserveCapacity(paths.count)
    for path in paths { images.append(try decodeImage(bytes: try readFile(path), channels: colorMode.channels, name: path)) }
    let (height, width) = imageSize.map { ($0[0], $0[1]) } ?? (images.first?.height ?? 1, images.first?.width ?? 1)
    if imageSize == nil, let first = images.first, let odd = images.firstIndex(where: { ($0.height, $0.width) != (first.height, first.width) }) {
        throw DataError("\(paths[odd]): is \(images[odd].height)x\(images[odd].width) but \(paths[0]) is \(first.height)x\(first.width); give --image-size H,W to resize them")
    }
    let c = colorMode.channels
    if images.allSatisfy({ ($0.height, $0.width) == (height, width) }) {
        var pixels: [UInt8] = []
        pixels.reserveCapacity(images.count * height * width * c)
        for image in images { pixels += image.pixels }
        return DecodedSplit(pixels: pixels, pixelType: .uint8, labels: labels, height: height, width: width, channels: c, labelSource: labelSource)
    }
    var floats: [Float] = []
    floats.reserveCapacity(images.count * height * width * c)
    for image in images {
        if (image.height, image.width) == (height, width) { floats += image.pixels.map { Float($0) * (1 / 255) } } else { floats += resizeBilinear(image, height: height, width: width) }
    }
    return DecodedSplit(pixels: floats.withUnsafeBytes { Array($0) }, pixelType: .float32, labels: labels,
                        height: height, width: width, channels: c, labelSource: labelSource)
}

/// Keras's `image_dataset_from_directory` layout: `DIR/train/<class>/*.png|jpg` and
/// `DIR/test/<class>/…`, or one `DIR/<class>/…` of which a seeded `--test-split` fraction is
/// held out. Classes are the folder names in alphanumeric order; files within a class in name
/// order, then the whole split in a fixed seeded order (Keras shuffles too), so that
/// `--validation-split` holds out every class rather than the last ones.
struct ImageFolderSource: DataSource {
    static let extensions: Set<String> = ["png", "jpg", "jpeg"]
    let directory: String
    let classNames: [String]
    let trainFiles: [(String, Int32)]
    let testFiles: [(String, Int32)]
    let loading: DataLoading

    static func subdirectories(_ path: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { name in
            var isDirectory: ObjCBool = false
            return !name.hasPrefix(".") && FileManager.default.fileExists(atPath: joinPath(path, name), isDirectory: &isDirectory) && isDirectory.boolValue
        }.sorted()
    }

    static func images(in path: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [])
            .filter { extensions.contains(($0 as NSString).pathExtension.lowercased()) }.sorted().map { joinPath(path, $0) }
    }

    static func looksLikeImageFolders(_ path: String) -> Bool {
        let top = subdirectories(path)
        let classRoot = top.contains("train") ? joinPath(path, "train") : path
        return subdirectories(classRoot).contains { !images(in: joinPath(classRoot, $0)).isEmpty }
    }

    /// Every class folder of `root`, each with its images.
    static func listing(_ root: String, classes: [String]) throws(DataError) -> [(String, Int32)] {
        var files: [(String, Int32)] = []
        for (index, name) in classes.enumerated() {
            let found = images(in: joinPath(root, name))
            guard !found.isEmpty else { throw DataError("\(joinPath(root, name)): a class folder with no PNG or JPEG images") }
            files += found.map { ($0, Int32(index)) }
        }
        var rng = SplitMix64(seed: 1337, stream: 0xF01D)
        for i in stride(from: files.count - 1, to: 0, by: -1) { files.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        return files
    }

    init(directory: String, loading: DataLoading) throws(DataError) {
        (self.directory, self.loading) = (directory, loading)
        let top = Self.subdirectories(directory)
        if top.contains("train") {
            let trainRoot = joinPath(directory, "train"), testRoot = joinPath(directory, "test")
            classNames = Self.subdirectories(trainRoot)
            guard classNames.count >= 2 else { throw DataError("\(trainRoot): needs one folder per class, at least 2, found \(classNames.count)") }
            guard FileManager.default.fileExists(atPath: testRoot) else {
                throw DataError("\(testRoot): no such folder (with train/, the test images go in test/<class>/)")
            }
            let testClasses = Self.subdirectories(testRoot)
            guard testClasses == classNames else {
                throw DataError("\(testRoot): its class folders (\(testClasses.joined(separator: ", "))) differ from train/'s (\(classNames.joined(separator: ", ")))")
            }
            trainFiles = try Self.listing(trainRoot, classes: classNames)
            testFiles = try Self.listing(testRoot, classes: classNames)
        } else {
            classNames = top
            guard classNames.count >= 2 else { throw DataError("\(directory): needs one folder per class, at least 2, found \(classNames.count)") }
            let all = try Self.listing(directory, classes: classNames)
            let fraction = loading.testSplit ?? 0.2
            let testCount = Int((Double(all.count) * fraction).rounded())
            guard testCount > 0, testCount < all.count else {
                throw DataError("--test-split: \(fraction) of \(all.count) images leaves \(testCount) for the test set")
            }
            trainFiles = Array(all[..<(all.count - testCount)])
            testFiles = Array(all[(all.count - testCount)...])
        }
        if let size = loading.imageSize, size.count != 2 || size.contains(where: { $0 < 1 }) {
            throw DataError("--image-size: expected H,W (two positive sizes), got \(size.map(String.init).joined(separator: ","))")
        }
    }

    var files: [String] { trainFiles.map(\.0) + testFiles.map(\.0) }

    func decode() throws(DataError) -> DecodedSet {
        let mode = loading.colorMode ?? .rgb
        let train = try decodeImages(trainFiles.map(\.0), labels: trainFiles.map(\.1), colorMode: mode, imageSize: loading.imageSize,
                                     labelSource: joinPath(directory, "train"))
        let test = try decodeImages(testFiles.map(\.0), labels: testFiles.map(\.1), colorMode: mode, imageSize: loading.imageSize,
                                    labelSource: joinPath(directory, "test"))
        var set = DecodedSet(train: train, test: test, classNames: classNames)
        // One split resized and the other not: give both floats, as training compares their type.
        if set.train.pixelType != set.test.pixelType {
            for keyPath in [\DecodedSet.train, \DecodedSet.test] where set[keyPath: keyPath].pixelType == .uint8 {
                let floats = set[keyPath: keyPath].pixels.map { Float($0) * (1 / 255) }
                set[keyPath: keyPath].pixels = floats.withUnsafeBytes { Array($0) }
                set[keyPath: keyPath].pixelType = .float32
            }
        }
        return set
    }
}

/// Image files given one by one (`predict --images`): PNG/JPEG, or one IDX or `.npy` array.
public func readImageFiles(_ paths: [String], colorMode: ColorMode?, imageSize: [Int]?) throws(DataError) -> LabeledImages {
    func set(_ split: DecodedSplit) -> LabeledImages {
        var header = DataCache.Header(source: "", format: .images, fingerprint: "", classes: 0, classNames: nil, verifiedByManifest: false,
                                      warnings: [], height: split.height, width: split.width, channels: split.channels, pixelType: split.pixelType,
                                      train: .init(count: split.count, imageOffset: 0, labelOffset: DataCache.align(split.pixels.count)),
                                      test: .init(count: 0, imageOffset: 0, labelOffset: 0), totalLength: 0)
        header.totalLength = header.train.labelOffset + 4 * split.count
        header.test = .init(count: 0, imageOffset: header.totalLength, labelOffset: header.totalLength)
        let empty = DecodedSplit(pixels: [], pixelType: split.pixelType, labels: [], height: split.height, width: split.width, channels: split.channels, labelSource: "")
        return DataCache.inMemory((DecodedSet(train: split, test: empty), header), warning: nil).train
    }
    if paths.count == 1, !ImageFolderSource.extensions.contains((paths[0] as NSString).pathExtension.lowercased()) {
        let path = paths[0]
        let bytes = try readFile(path)
        if path.lowercased().hasSuffix(".npy") {
            let images = try NPYArray(bytes: bytes, name: path).images(name: path)
            let count = images.pixels.count / (images.height * images.width * images.channels * images.type.size)
            return set(DecodedSplit(pixels: images.pixels, pixelType: images.type, labels: [Int32](repeating: 0, count: count),
                                    height: images.height, width: images.width, channels: images.channels, labelSource: path))
        }
        var raw = bytes
        if Gzip.isGzip(raw) { do { raw = try Gzip.decompress(raw) } catch { throw DataError("\(path): \(error.description)") } }
        let file = try IDXFile(raw: raw, name: path)
        let dims = file.dimensions
        guard dims.count == 3 || dims.count == 4 else {
            throw DataError("\(path): expected 3 or 4 dimensions (count, height, width[, channels]), found \(dims.count)")
        }
        return set(DecodedSplit(pixels: file.bytes, pixelType: .uint8, labels: [Int32](repeating: 0, count: dims[0]),
                                height: dims[1], width: dims[2], channels: dims.count == 4 ? dims[3] : 1, labelSource: path))
    }
    return set(try decodeImages(paths, labels: [Int32](repeating: 0, count: paths.count), colorMode: colorMode ?? .rgb,
                                imageSize: imageSize, labelSource: paths.first ?? ""))
}

/// Labels for `predict`: an IDX label file or a `.npy` array.
public func readLabelFile(_ path: String) throws(DataError) -> [Int32] {
    let bytes = try readFile(path)
    if path.lowercased().hasSuffix(".npy") { return try NPYArray(bytes: bytes, name: path).labels(name: path) }
    var raw = bytes
    if Gzip.isGzip(raw) { do { raw = try Gzip.decompress(raw) } catch { throw DataError("\(path): \(error.description)") } }
    let file = try IDXFile(raw: raw, name: path)
    guard file.dimensions.count == 1 else { throw DataError("\(path): expected 1 dimension (count), found \(file.dimensions.count)") }
    return file.bytes.map { Int32($0) }
}
