import Foundation

/// Memory that holds decoded examples: a read-only mapping of a cache file (shared by every
/// rank of a node through the page cache) or a private allocation.
public final class PixelStorage: @unchecked Sendable {
    public let base: UnsafeRawPointer
    public let length: Int
    private let release: () -> Void

    init(base: UnsafeRawPointer, length: Int, release: @escaping () -> Void) {
        (self.base, self.length, self.release) = (base, length, release)
    }

    /// A private copy of `bytes`, 64-byte aligned.
    convenience init(copying bytes: UnsafeRawBufferPointer) {
        let memory = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 64)
        if let source = bytes.baseAddress { memory.copyMemory(from: source, byteCount: bytes.count) }
        self.init(base: UnsafeRawPointer(memory), length: bytes.count) { memory.deallocate() }
    }

    deinit { release() }
}

/// How pixels are stored: bytes are scaled by 1/255 when a batch is gathered; floats are used as
/// they are.
public enum PixelType: String, Codable, Sendable {
    case uint8, float32
    public var size: Int { self == .uint8 ? 1 : 4 }
}

/// Images and labels of one split: a view into storage the set does not copy (a slice is another
/// view). Images are NHWC; labels Int32 in 0…K−1.
public struct LabeledImages: @unchecked Sendable {
    public let storage: PixelStorage
    public let pixelType: PixelType
    /// Where the first image and the first label are in `storage`.
    let imageOffset: Int, labelOffset: Int
    public let count: Int
    public let height: Int
    public let width: Int
    public let channels: Int
    public var valuesPerImage: Int { height * width * channels }

    public init(storage: PixelStorage, pixelType: PixelType, imageOffset: Int, labelOffset: Int,
                count: Int, height: Int, width: Int, channels: Int) {
        (self.storage, self.pixelType, self.imageOffset, self.labelOffset) = (storage, pixelType, imageOffset, labelOffset)
        (self.count, self.height, self.width, self.channels) = (count, height, width, channels)
    }

    /// A private set of byte images (e.g. files given to `predict`).
    public init(images: [UInt8], labels: [Int32], count: Int, height: Int, width: Int, channels: Int) {
        var bytes = images
        let labelOffset = (images.count + 63) / 64 * 64
        bytes += [UInt8](repeating: 0, count: labelOffset - images.count)
        labels.withUnsafeBytes { bytes += $0 }
        let storage = bytes.withUnsafeBytes { PixelStorage(copying: $0) }
        self.init(storage: storage, pixelType: .uint8, imageOffset: 0, labelOffset: labelOffset,
                  count: count, height: height, width: width, channels: channels)
    }

    /// The labels, valid while the set is.
    public var labels: UnsafeBufferPointer<Int32> {
        UnsafeBufferPointer(start: (storage.base + labelOffset).assumingMemoryBound(to: Int32.self), count: count)
    }

    /// The raw pixel bytes of every image, in order.
    public var pixelBytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: storage.base + imageOffset, count: count * valuesPerImage * pixelType.size)
    }

    /// Examples `range` as their own set, sharing the storage (Keras's validation_split slices like this).
    public func slice(_ range: Range<Int>) -> LabeledImages {
        LabeledImages(storage: storage, pixelType: pixelType,
                      imageOffset: imageOffset + range.lowerBound * valuesPerImage * pixelType.size,
                      labelOffset: labelOffset + range.lowerBound * 4, count: range.count,
                      height: height, width: width, channels: channels)
    }

    /// Image `index` as [0, 1]-scaled floats (bytes) or its stored floats.
    public func image(_ index: Int) -> [Float] {
        [Float](unsafeUninitializedCapacity: valuesPerImage) { buffer, initialized in
            var label: Int32 = 0
            gather(index..<(index + 1), into: buffer.baseAddress!, labels: &label)
            initialized = valuesPerImage
        }
    }

    /// Scales the images at `indices` to [0, 1] floats (NHWC), or by `scale` (1: the raw 0…255
    /// a model that starts with Keras's Rescaling expects), and copies their labels.
    /// Concrete, not generic: an unspecialised generic iterator would allocate on every step.
    public func gather(_ indices: ArraySlice<Int32>, into x: UnsafeMutablePointer<Float>, labels y: UnsafeMutablePointer<Int32>,
                       scale: Float = 1 / 255) {
        indices.withUnsafeBufferPointer { buffer in gather(count: buffer.count, into: x, labels: y, scale: scale) { Int(buffer[$0]) } }
    }

    /// The same for the consecutive examples `range`.
    public func gather(_ range: Range<Int>, into x: UnsafeMutablePointer<Float>, labels y: UnsafeMutablePointer<Int32>, scale: Float = 1 / 255) {
        gather(count: range.count, into: x, labels: y, scale: scale) { range.lowerBound + $0 }
    }

    private func gather(count: Int, into x: UnsafeMutablePointer<Float>, labels y: UnsafeMutablePointer<Int32>, scale: Float,
                        example: (Int) -> Int) {
        let values = valuesPerImage
        let sourceLabels = labels
        switch pixelType {
        case .uint8:
            let source = (storage.base + imageOffset).assumingMemoryBound(to: UInt8.self)
            for i in 0..<count {
                let index = example(i)
                let image = source + index * values
                let out = x + i * values
                for p in 0..<values { out[p] = Float(image[p]) * scale }
                y[i] = sourceLabels[index]
            }
        case .float32:
            let source = (storage.base + imageOffset).assumingMemoryBound(to: Float.self)
            for i in 0..<count {
                let index = example(i)
                (x + i * values).update(from: source + index * values, count: values)
                y[i] = sourceLabels[index]
            }
        }
    }
}
