import Foundation

/// CIFAR-10 and CIFAR-100 binary batches: records of a label byte (CIFAR-100: coarse, then fine)
/// and 3,072 bytes of 32×32 red, green and blue planes, turned here into HWC pixels.
public enum CIFARKind: Sendable {
    case cifar10, cifar100

    var labelBytes: Int { self == .cifar10 ? 1 : 2 }
    var recordSize: Int { labelBytes + 3072 }
    var classes: Int { self == .cifar10 ? 10 : 100 }
    var trainFiles: [String] { self == .cifar10 ? (1...5).map { "data_batch_\($0).bin" } : ["train.bin"] }
    var testFile: String { self == .cifar10 ? "test_batch.bin" : "test.bin" }
    var namesFile: String { self == .cifar10 ? "batches.meta.txt" : "fine_label_names.txt" }
}

/// One batch file's images (HWC) and labels; CIFAR-100 keeps its fine label.
public func readCIFARBatch(bytes: [UInt8], kind: CIFARKind, name: String) throws(DataError) -> (pixels: [UInt8], labels: [Int32]) {
    guard !bytes.isEmpty, bytes.count % kind.recordSize == 0 else {
        throw DataError("\(name): wrong length for a CIFAR batch: \(bytes.count) bytes is not a whole number of \(kind.recordSize)-byte records")
    }
    let count = bytes.count / kind.recordSize
    var pixels = [UInt8](repeating: 0, count: count * 3072)
    var labels = [Int32](repeating: 0, count: count)
    bytes.withUnsafeBufferPointer { source in
        pixels.withUnsafeMutableBufferPointer { out in
            for r in 0..<count {
                let record = source.baseAddress! + r * kind.recordSize
                labels[r] = Int32(record[kind.labelBytes - 1])
                let planes = record + kind.labelBytes, image = out.baseAddress! + r * 3072
                for p in 0..<1024 {
                    image[3 * p] = planes[p]
                    image[3 * p + 1] = planes[1024 + p]
                    image[3 * p + 2] = planes[2048 + p]
                }
            }
        }
    }
    if let bad = labels.firstIndex(where: { Int($0) >= kind.classes }) {
        throw DataError("\(name): record \(bad) has label \(labels[bad]), outside CIFAR-\(kind.classes)'s 0-\(kind.classes - 1)")
    }
    return (pixels, labels)
}

/// The batches of a CIFAR directory (`cifar-10-batches-bin`, `cifar-100-binary`); the training
/// batches present are read in order, and class names come from the meta file when present.
struct CIFARSource: DataSource {
    let directory: String
    let kind: CIFARKind
    let trainFiles: [String]

    init(directory: String, kind: CIFARKind) throws(DataError) {
        (self.directory, self.kind) = (directory, kind)
        trainFiles = kind.trainFiles.map { joinPath(directory, $0) }.filter { FileManager.default.fileExists(atPath: $0) }
        guard !trainFiles.isEmpty else { throw DataError("\(joinPath(directory, kind.trainFiles[0])): no such file (a CIFAR directory needs its training batches)") }
    }

    var namesPath: String { joinPath(directory, kind.namesFile) }
    var files: [String] {
        trainFiles + [joinPath(directory, kind.testFile)] + [namesPath].filter { FileManager.default.fileExists(atPath: $0) }
    }

    func decode() throws(DataError) -> DecodedSet {
        var pixels: [UInt8] = [], labels: [Int32] = []
        for file in trainFiles {
            let batch = try readCIFARBatch(bytes: try readFile(file), kind: kind, name: file)
            pixels += batch.pixels
            labels += batch.labels
        }
        let testPath = joinPath(directory, kind.testFile)
        let test = try readCIFARBatch(bytes: try readFile(testPath), kind: kind, name: testPath)
        var names: [String]?
        if FileManager.default.fileExists(atPath: namesPath) {
            let text = String(decoding: try readFile(namesPath), as: UTF8.self)
            let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            guard lines.count == kind.classes else {
                throw DataError("\(namesPath): names \(lines.count) classes, CIFAR-\(kind.classes) has \(kind.classes)")
            }
            names = lines
        }
        return DecodedSet(train: DecodedSplit(pixels: pixels, pixelType: .uint8, labels: labels, height: 32, width: 32, channels: 3,
                                              labelSource: trainFiles.count == 1 ? trainFiles[0] : directory),
                          test: DecodedSplit(pixels: test.pixels, pixelType: .uint8, labels: test.labels, height: 32, width: 32, channels: 3,
                                             labelSource: testPath),
                          classNames: names, classes: kind.classes)
    }
}
