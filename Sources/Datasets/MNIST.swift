import Foundation

/// Images and labels of one split. Images stay as bytes (47 MB for the training set rather than
/// 188 MB of floats) and are scaled to [0, 1] per batch.
public struct LabeledImages: Sendable {
    public let images: [UInt8]
    public let labels: [UInt8]
    public let count: Int
    public let rows: Int
    public let columns: Int
    public var pixelsPerImage: Int { rows * columns }

    public init(images: [UInt8], labels: [UInt8], count: Int, rows: Int, columns: Int) {
        (self.images, self.labels, self.count, self.rows, self.columns) = (images, labels, count, rows, columns)
    }

    /// Examples `range` as their own set (Keras's validation_split slices like this).
    public func slice(_ range: Range<Int>) -> LabeledImages {
        LabeledImages(images: Array(images[range.lowerBound * pixelsPerImage..<range.upperBound * pixelsPerImage]),
                      labels: Array(labels[range]), count: range.count, rows: rows, columns: columns)
    }

    /// Scales the images at `indices` to [0, 1] floats (NHWC, one channel) and copies their labels.
    /// Concrete, not generic: an unspecialised generic iterator would allocate on every step.
    public func gather(_ indices: ArraySlice<Int32>, into x: UnsafeMutablePointer<Float>, labels y: UnsafeMutablePointer<Int32>) {
        indices.withUnsafeBufferPointer { buffer in gather(count: buffer.count, into: x, labels: y) { Int(buffer[$0]) } }
    }

    /// The same for the consecutive examples `range`.
    public func gather(_ range: Range<Int>, into x: UnsafeMutablePointer<Float>, labels y: UnsafeMutablePointer<Int32>) {
        gather(count: range.count, into: x, labels: y) { range.lowerBound + $0 }
    }

    private func gather(count: Int, into x: UnsafeMutablePointer<Float>, labels y: UnsafeMutablePointer<Int32>, example: (Int) -> Int) {
        let pixels = pixelsPerImage
        images.withUnsafeBufferPointer { source in
            labels.withUnsafeBufferPointer { sourceLabels in
                for i in 0..<count {
                    let index = example(i)
                    let image = source.baseAddress! + index * pixels
                    let out = x + i * pixels
                    for p in 0..<pixels { out[p] = Float(image[p]) * (1 / 255) }
                    y[i] = Int32(sourceLabels[index])
                }
            }
        }
    }
}

/// The four MNIST files of a directory, checked.
public struct MNIST: Sendable {
    public static let fileNames = (trainImages: "train-images-idx3-ubyte", trainLabels: "train-labels-idx1-ubyte",
                                   testImages: "t10k-images-idx3-ubyte", testLabels: "t10k-labels-idx1-ubyte")
    public static let classes = 10

    public let train: LabeledImages
    public let test: LabeledImages
    /// SHA-256 over the four raw files' sums: names the exact data a checkpoint was trained on.
    public let fingerprint: String
    /// True when every file matched the directory's SHA256SUMS(.raw) manifest.
    public let verifiedByManifest: Bool

    /// Loads `directory`, accepting each file raw or as `.gz`. When the directory has a
    /// `SHA256SUMS.raw` manifest (the embedded copy does), every file must match it.
    public init(directory: String) throws(DataError) {
        guard FileManager.default.fileExists(atPath: directory) else { throw DataError("\(directory): no such data directory") }
        let manifest = try Self.readManifest(directory)
        func load(_ name: String) throws(DataError) -> IDXFile {
            let base = (directory as NSString).appendingPathComponent(name)
            let path = FileManager.default.fileExists(atPath: base) ? base : base + ".gz"
            guard FileManager.default.fileExists(atPath: path) else {
                throw DataError("\(base)(.gz): no such file (the data directory needs the four MNIST files)")
            }
            let file = try IDXFile(path: path)
            if let expected = manifest?[name], expected != file.sha256 {
                throw DataError("\(path): SHA-256 of its content is \(file.sha256), the manifest says \(expected)")
            }
            return file
        }
        let names = Self.fileNames
        let trainImages = try load(names.trainImages), trainLabels = try load(names.trainLabels)
        let testImages = try load(names.testImages), testLabels = try load(names.testLabels)
        train = try Self.pair(trainImages, trainLabels, directory: directory, images: names.trainImages, labels: names.trainLabels)
        test = try Self.pair(testImages, testLabels, directory: directory, images: names.testImages, labels: names.testLabels)
        guard train.rows == test.rows, train.columns == test.columns else {
            throw DataError("\(directory): training images are \(train.rows)x\(train.columns) but test images \(test.rows)x\(test.columns)")
        }
        fingerprint = SHA256.hex(Array([trainImages, trainLabels, testImages, testLabels].map(\.sha256).joined().utf8))
        verifiedByManifest = manifest != nil
    }

    private static func pair(_ images: IDXFile, _ labels: IDXFile, directory: String, images imageName: String,
                             labels labelName: String) throws(DataError) -> LabeledImages {
        let imagePath = (directory as NSString).appendingPathComponent(imageName)
        let labelPath = (directory as NSString).appendingPathComponent(labelName)
        guard images.dimensions.count == 3 else {
            throw DataError("\(imagePath): expected 3 dimensions (count, rows, columns), found \(images.dimensions.count)")
        }
        guard labels.dimensions.count == 1 else {
            throw DataError("\(labelPath): expected 1 dimension (count), found \(labels.dimensions.count)")
        }
        guard images.dimensions[0] == labels.dimensions[0] else {
            throw DataError("\(labelPath): holds \(labels.dimensions[0]) labels but \(imageName) holds \(images.dimensions[0]) images")
        }
        guard images.dimensions[0] > 0 else { throw DataError("\(imagePath): holds no images") }
        if let bad = labels.bytes.firstIndex(where: { Int($0) >= classes }) {
            throw DataError("\(labelPath): label \(labels.bytes[bad]) at index \(bad) is outside 0-\(classes - 1)")
        }
        return LabeledImages(images: images.bytes, labels: labels.bytes, count: images.dimensions[0],
                             rows: images.dimensions[1], columns: images.dimensions[2])
    }

    /// `SHA256SUMS.raw` lines: "<hex>  <name>".
    private static func readManifest(_ directory: String) throws(DataError) -> [String: String]? {
        let path = (directory as NSString).appendingPathComponent("SHA256SUMS.raw")
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        var sums: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count == 2, parts[0].count == 64 else { throw DataError("\(path): malformed line '\(line)'") }
            sums[String(parts[1]).trimmingCharacters(in: CharacterSet(charactersIn: "*"))] = String(parts[0])
        }
        return sums
    }
}
