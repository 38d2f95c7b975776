/// Images and labels of one split. Images stay as bytes (47 MB for MNIST's training set rather
/// than 188 MB of floats), NHWC, and are scaled to [0, 1] per batch.
public struct LabeledImages: Sendable {
    public let images: [UInt8]
    public let labels: [UInt8]
    public let count: Int
    public let height: Int
    public let width: Int
    public let channels: Int
    public var valuesPerImage: Int { height * width * channels }

    public init(images: [UInt8], labels: [UInt8], count: Int, height: Int, width: Int, channels: Int) {
        (self.images, self.labels, self.count) = (images, labels, count)
        (self.height, self.width, self.channels) = (height, width, channels)
    }

    /// Examples `range` as their own set (Keras's validation_split slices like this).
    public func slice(_ range: Range<Int>) -> LabeledImages {
        LabeledImages(images: Array(images[range.lowerBound * valuesPerImage..<range.upperBound * valuesPerImage]),
                      labels: Array(labels[range]), count: range.count, height: height, width: width, channels: channels)
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
        images.withUnsafeBufferPointer { source in
            labels.withUnsafeBufferPointer { sourceLabels in
                for i in 0..<count {
                    let index = example(i)
                    let image = source.baseAddress! + index * values
                    let out = x + i * values
                    for p in 0..<values { out[p] = Float(image[p]) * scale }
                    y[i] = Int32(sourceLabels[index])
                }
            }
        }
    }
}
