/// Max or average pooling with any window, strides and padding (Keras's MaxPooling2D and
/// AveragePooling2D). 'same' padding ignores the padded positions: a max over the window's real
/// inputs, an average divided by their count, as Keras computes them.
final class WindowPoolLayer: Layer {
    let name: String
    let average: Bool
    let h, w, c, oh, ow: Int
    let window: (Int, Int), strides: (Int, Int), pad: (Int, Int)
    let input: UnsafePointer<Float>
    let gradInput: UnsafeMutablePointer<Float>?
    let output: UnsafeMutablePointer<Float>
    /// Max: each output's winning input index within its image.
    private let argmax: UnsafeMutablePointer<Int32>
    var outputCount: Int { oh * ow * c }

    init(name: String, average: Bool, inputShape: [Int], pooling p: ModelGraph.Pooling, input: UnsafePointer<Float>,
         gradInput: UnsafeMutablePointer<Float>?, maxBatch: Int) {
        (self.name, self.average, self.input, self.gradInput) = (name, average, input, gradInput)
        (h, w, c) = (inputShape[0], inputShape[1], inputShape[2])
        window = (p.size[0], p.size[1])
        strides = (p.strides[0], p.strides[1])
        oh = ModelGraph.output(h, window: window.0, stride: strides.0, padding: p.padding)
        ow = ModelGraph.output(w, window: window.1, stride: strides.1, padding: p.padding)
        pad = p.padding == .same ? (max((oh - 1) * strides.0 + window.0 - h, 0) / 2, max((ow - 1) * strides.1 + window.1 - w, 0) / 2) : (0, 0)
        output = .tensor(capacity: maxBatch * oh * ow * c)
        argmax = .tensor(capacity: average ? 0 : maxBatch * oh * ow * c)
    }

    deinit {
        output.deallocate()
        argmax.deallocate()
    }

    /// The rows and columns of the input the window of (y, x) covers.
    @inline(__always)
    private func span(_ y: Int, _ x: Int) -> (Range<Int>, Range<Int>) {
        let top = y * strides.0 - pad.0, left = x * strides.1 - pad.1
        return (max(top, 0)..<min(top + window.0, h), max(left, 0)..<min(left + window.1, w))
    }

    func forward(batch: Int, pass: Pass) {
        for n in 0..<batch {
            let image = input + n * h * w * c
            for y in 0..<oh {
                for x in 0..<ow {
                    let (rows, columns) = span(y, x)
                    let out = output + ((n * oh + y) * ow + x) * c
                    if average {
                        for k in 0..<c { out[k] = 0 }
                        for i in rows { for j in columns { let p = image + (i * w + j) * c; for k in 0..<c { out[k] += p[k] } } }
                        let inverse = 1 / Float(rows.count * columns.count)
                        for k in 0..<c { out[k] *= inverse }
                    } else {
                        let best = argmax + ((n * oh + y) * ow + x) * c
                        for k in 0..<c { out[k] = -.infinity; best[k] = 0 }
                        for i in rows {
                            for j in columns {
                                let p = image + (i * w + j) * c
                                for k in 0..<c where p[k] > out[k] {
                                    out[k] = p[k]
                                    best[k] = Int32((i * w + j) * c + k)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    func backward(gradOutput: UnsafeMutablePointer<Float>, batch: Int) {
        guard let gradInput else { return }
        gradInput.update(repeating: 0, count: batch * h * w * c)
        for n in 0..<batch {
            let image = gradInput + n * h * w * c
            for y in 0..<oh {
                for x in 0..<ow {
                    let g = gradOutput + ((n * oh + y) * ow + x) * c
                    if average {
                        let (rows, columns) = span(y, x)
                        let inverse = 1 / Float(rows.count * columns.count)
                        for i in rows { for j in columns { let p = image + (i * w + j) * c; for k in 0..<c { p[k] += g[k] * inverse } } }
                    } else {
                        let best = argmax + ((n * oh + y) * ow + x) * c
                        for k in 0..<c { image[Int(best[k])] += g[k] }
                    }
                }
            }
        }
    }
}

/// GlobalAveragePooling2D and GlobalMaxPooling2D: one value per channel.
final class GlobalPoolLayer: Layer {
    let name: String
    let average: Bool
    let pixels, c: Int
    let input: UnsafePointer<Float>
    let gradInput: UnsafeMutablePointer<Float>?
    let output: UnsafeMutablePointer<Float>
    private let argmax: UnsafeMutablePointer<Int32>
    var outputCount: Int { c }

    init(name: String, average: Bool, inputShape: [Int], input: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>?, maxBatch: Int) {
        (self.name, self.average, self.input, self.gradInput) = (name, average, input, gradInput)
        (pixels, c) = (inputShape[0] * inputShape[1], inputShape[2])
        output = .tensor(capacity: maxBatch * c)
        argmax = .tensor(capacity: average ? 0 : maxBatch * c)
    }

    deinit {
        output.deallocate()
        argmax.deallocate()
    }

    func forward(batch: Int, pass: Pass) {
        for n in 0..<batch {
            let image = input + n * pixels * c, out = output + n * c
            if average {
                for k in 0..<c { out[k] = 0 }
                for i in 0..<pixels { let p = image + i * c; for k in 0..<c { out[k] += p[k] } }
                let inverse = 1 / Float(pixels)
                for k in 0..<c { out[k] *= inverse }
            } else {
                let best = argmax + n * c
                for k in 0..<c { out[k] = image[k]; best[k] = Int32(k) }
                for i in 1..<max(pixels, 1) {
                    let p = image + i * c
                    for k in 0..<c where p[k] > out[k] { out[k] = p[k]; best[k] = Int32(i * c + k) }
                }
            }
        }
    }

    func backward(gradOutput: UnsafeMutablePointer<Float>, batch: Int) {
        guard let gradInput else { return }
        for n in 0..<batch {
            let image = gradInput + n * pixels * c, g = gradOutput + n * c
            if average {
                let inverse = 1 / Float(pixels)
                for i in 0..<pixels { let p = image + i * c; for k in 0..<c { p[k] = g[k] * inverse } }
            } else {
                image.update(repeating: 0, count: pixels * c)
                let best = argmax + n * c
                for k in 0..<c { image[Int(best[k])] += g[k] }
            }
        }
    }
}
