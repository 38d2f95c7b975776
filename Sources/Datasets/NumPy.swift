import Foundation
import ZIPFoundation

/// The arrays of an `.npz` (a zip of `.npy` files, stored by `np.savez` or deflated by
/// `np.savez_compressed`), by name without `.npy`; every entry's CRC-32 is checked.
public func readNPZ(path name: String) throws(DataError) -> [String: NPYArray] {
    let bytes = try readFile(name)
    let archive: Archive
    // From the file, not from memory: ZIPFoundation 0.9.20's in-memory archive traps (a negative
    // read range) on a corrupt zip that seeks past its end (found fuzzing the .keras reader).
    do { archive = try Archive(url: URL(fileURLWithPath: name), accessMode: .read) } catch {
        throw DataError("\(name): not a readable zip archive (an .npz is one): \(error)")
    }
    var arrays: [String: NPYArray] = [:]
    for entry in archive where entry.type == .file {
        let entryName = entry.path
        var content = Data()
        content.reserveCapacity(Int(min(entry.uncompressedSize, UInt64(bytes.count) * 1100)))
        let checksum: CRC32
        do { checksum = try archive.extract(entry, skipCRC32: false) { content.append($0) } } catch {
            throw DataError("\(name): \(entryName): corrupt or truncated (\(error))")
        }
        guard checksum == entry.checksum, UInt64(content.count) == entry.uncompressedSize else {
            throw DataError("\(name): \(entryName): corrupt (its CRC-32 or size does not match the archive's directory)")
        }
        let key = entryName.hasSuffix(".npy") ? String(entryName.dropLast(4)) : entryName
        arrays[key] = try NPYArray(bytes: [UInt8](content), name: "\(name): \(entryName)")
    }
    return arrays
}

/// `x_train`, `y_train`, `x_test`, `y_test` (what `keras.datasets.*.load_data()` returns and
/// its users save) in one `.npz` or as four `.npy` files in a directory.
struct NumPySource: DataSource {
    static let names = ["x_train", "y_train", "x_test", "y_test"]
    let path: String
    let archive: Bool

    var files: [String] { archive ? [path] : Self.names.map { joinPath(path, $0 + ".npy") } }

    func decode() throws(DataError) -> DecodedSet {
        var arrays: [String: (NPYArray, String)] = [:]
        if archive {
            for (key, array) in try readNPZ(path: path) { arrays[key] = (array, "\(path): \(key).npy") }
            let missing = Self.names.filter { arrays[$0] == nil }
            guard missing.isEmpty else {
                throw DataError("\(path): has no \(missing.joined(separator: ", ")) (it holds \(arrays.keys.sorted().joined(separator: ", "))); expected x_train, y_train, x_test, y_test")
            }
        } else {
            for (key, file) in zip(Self.names, files) { arrays[key] = (try NPYArray(bytes: try readFile(file), name: file), file) }
        }
        func split(_ x: String, _ y: String) throws(DataError) -> DecodedSplit {
            let (images, imageName) = arrays[x]!, (labels, labelName) = arrays[y]!
            let pixels = try images.images(name: imageName)
            let values = try labels.labels(name: labelName)
            guard values.count == images.shape[0] else {
                throw DataError("\(labelName): holds \(values.count) labels but \(x) holds \(images.shape[0]) images")
            }
            return DecodedSplit(pixels: pixels.pixels, pixelType: pixels.type, labels: values,
                                height: pixels.height, width: pixels.width, channels: pixels.channels, labelSource: labelName)
        }
        let train = try split("x_train", "y_train"), test = try split("x_test", "y_test")
        guard train.pixelType == test.pixelType else {
            throw DataError("\(path): x_train is \(train.pixelType.rawValue) but x_test \(test.pixelType.rawValue); give both one dtype")
        }
        return DecodedSet(train: train, test: test)
    }
}

/// What a data set makes of an array: images or labels.
extension NPYArray {
    /// As images: N×H×W or N×H×W×C, uint8 (scaled by 1/255 when read) or float (used as is).
    func images(name: String) throws(DataError) -> (pixels: [UInt8], type: PixelType, height: Int, width: Int, channels: Int) {
        guard shape.count == 3 || shape.count == 4 else {
            throw DataError("\(name): images must be N×H×W or N×H×W×C, the array is \(shape)")
        }
        guard shape.dropFirst().allSatisfy({ $0 > 0 }) else { throw DataError("\(name): has an empty image shape \(Array(shape.dropFirst()))") }
        let (h, w, c) = (shape[1], shape[2], shape.count == 4 ? shape[3] : 1)
        switch (kind, itemSize) {
        case ("u", 1): return (data, .uint8, h, w, c)
        case ("f", 4): return (data, .float32, h, w, c)
        case ("f", 8):
            let floats = (0..<(data.count / 8)).map { Float(double($0)) }
            return (floats.withUnsafeBytes { Array($0) }, .float32, h, w, c)
        default: throw DataError("\(name): images of dtype \(dtypeName) are not read; expected uint8 (scaled by 1/255) or float32")
        }
    }

    /// As class labels: integers of any width, N or N×1, or a one-hot N×K matrix.
    func labels(name: String) throws(DataError) -> [Int32] {
        let n = shape.first ?? 0
        if shape.count == 1 || (shape.count == 2 && shape[1] == 1) {
            guard kind == "u" || kind == "i" else {
                throw DataError("\(name): labels of dtype \(dtypeName) are not read; expected integers (or a one-hot N×K matrix)")
            }
            var labels = [Int32](repeating: 0, count: n)
            for i in 0..<n {
                let v = integer(i)
                guard v >= 0, v <= Int64(Int32.max) else {
                    throw DataError("\(name): label \(kind == "u" && itemSize == 8 ? String(UInt64(bitPattern: v)) : String(v)) at index \(i) is negative or too large")
                }
                labels[i] = Int32(v)
            }
            return labels
        }
        guard shape.count == 2 else { throw DataError("\(name): labels must be N, N×1 or one-hot N×K, the array is \(shape)") }
        let k = shape[1]
        var labels = [Int32](repeating: 0, count: n)
        for i in 0..<n {
            var hot = -1
            for j in 0..<k {
                let v = double(i * k + j)
                if v == 1 && hot < 0 { hot = j } else if v != 0 {
                    throw DataError("\(name): row \(i) of the one-hot labels is not one 1 among 0s")
                }
            }
            guard hot >= 0 else { throw DataError("\(name): row \(i) of the one-hot labels has no 1") }
            labels[i] = Int32(hot)
        }
        return labels
    }
}
