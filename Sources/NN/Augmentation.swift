/// Keras's RandomFlip("horizontal"): in training each image is mirrored left-right with
/// probability 1/2, drawn from the counter-based generator; at inference a copy.
final class RandomFlipLayer: Layer {
    let name: String
    let h, w, c, layerIndex: Int
    let input: UnsafePointer<Float>
    let gradInput: UnsafeMutablePointer<Float>?
    let output: UnsafeMutablePointer<Float>
    private let flipped: UnsafeMutablePointer<Bool>
    var outputCount: Int { h * w * c }

    init(name: String, shape: [Int], layerIndex: Int, input: UnsafePointer<Float>, gradInput: UnsafeMutablePointer<Float>?, maxBatch: Int) {
        (self.name, self.layerIndex, self.input, self.gradInput) = (name, layerIndex, input, gradInput)
        (h, w, c) = (shape[0], shape[1], shape[2])
        output = .tensor(capacity: maxBatch * h * w * c)
        flipped = .tensor(capacity: maxBatch)
    }

    deinit {
        output.deallocate()
        flipped.deallocate()
    }

    /// Mirrors (or copies) each image of `source` into `target` as the forward pass chose.
    private func apply(_ source: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>, batch: Int) {
        for b in 0..<batch {
            let image = source + b * outputCount, out = target + b * outputCount
            guard flipped[b] else {
                out.update(from: image, count: outputCount)
                continue
            }
            for y in 0..<h {
                for x in 0..<w { (out + (y * w + x) * c).update(from: image + (y * w + (w - 1 - x)) * c, count: c) }
            }
        }
    }

    func forward(batch: Int, pass: Pass) {
        for b in 0..<batch {
            flipped[b] = pass.training && CounterRandom(seed: pass.seed, layer: layerIndex, step: pass.step, example: pass.firstExample + b).unit(0) < 0.5
        }
        apply(input, output, batch: batch)
    }

    func backward(gradOutput: UnsafeMutablePointer<Float>, batch: Int) {
        if let gradInput { apply(gradOutput, gradInput, batch: batch) }
    }
}

/// Keras's RandomTranslation: in training each image moves by (dy, dx) = (u·H, v·W) with u, v
/// uniform over the height and width factors (a positive shift moves the content down and
/// right), sampled bilinearly (or at the nearest pixel), with Keras's fill modes beyond the
/// edge: reflect (d c b a | a b c d | d c b a), wrap, nearest, or a constant.
public final class RandomTranslationLayer: Layer {
    let name: String
    let settings: ModelGraph.RandomTranslation
    let h, w, c, layerIndex: Int
    let input: UnsafePointer<Float>
    let gradInput: UnsafeMutablePointer<Float>?
    let output: UnsafeMutablePointer<Float>
    /// The shift each image of the last forward pass got (nil: a copy).
    private var shifts: [(dy: Float, dx: Float)?]
    var outputCount: Int { h * w * c }

    init(name: String, settings: ModelGraph.RandomTranslation, shape: [Int], layerIndex: Int, input: UnsafePointer<Float>,
         gradInput: UnsafeMutablePointer<Float>?, maxBatch: Int) {
        (self.name, self.settings, self.layerIndex, self.input, self.gradInput) = (name, settings, layerIndex, input, gradInput)
        (h, w, c) = (shape[0], shape[1], shape[2])
        output = .tensor(capacity: maxBatch * h * w * c)
        shifts = Array(repeating: nil, count: maxBatch)
    }

    deinit { output.deallocate() }

    /// One image shifted by (dy, dx) pixels as the layer shifts it in training: Keras's
    /// `transform_images` with translations (dx, dy), for a check against Keras itself.
    public static func translate(_ image: [Float], shape: [Int], dy: Float, dx: Float, settings: ModelGraph.RandomTranslation) -> [Float] {
        var out = [Float](repeating: 0, count: image.count)
        image.withUnsafeBufferPointer { x in
            let layer = RandomTranslationLayer(name: "", settings: settings, shape: shape, layerIndex: 0, input: x.baseAddress!, gradInput: nil, maxBatch: 1)
            layer.translate(x.baseAddress!, into: layer.output, dy: dy, dx: dx)
            out = Array(UnsafeBufferPointer(start: layer.output, count: image.count))
        }
        return out
    }

    func forward(batch: Int, pass: Pass) {
        for b in 0..<batch {
            guard pass.training else {
                shifts[b] = nil
                continue
            }
            let random = CounterRandom(seed: pass.seed, layer: layerIndex, step: pass.step, example: pass.firstExample + b)
            let u = Float(settings.height[0]) + Float(settings.height[1] - settings.height[0]) * random.unit(0)
            let v = Float(settings.width[0]) + Float(settings.width[1] - settings.width[0]) * random.unit(1)
            shifts[b] = (u * Float(h), v * Float(w))
        }
        for b in 0..<batch {
            let image = input + b * outputCount, out = output + b * outputCount
            guard let shift = shifts[b] else {
                out.update(from: image, count: outputCount)
                continue
            }
            translate(image, into: out, dy: shift.dy, dx: shift.dx)
        }
    }

    /// One image shifted by (dy, dx): output (y, x) samples the input at (y − dy, x − dx).
    func translate(_ image: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, dy: Float, dx: Float) {
        out.update(repeating: 0, count: outputCount)
        forEachTap(dy: dy, dx: dx) { target, source, weight in
            if let source {
                for k in 0..<c { out[target + k] += weight * image[source + k] }
            } else {
                for k in 0..<c { out[target + k] += weight * Float(settings.fillValue) }
            }
        }
    }

    func backward(gradOutput: UnsafeMutablePointer<Float>, batch: Int) {
        guard let gradInput else { return }
        for b in 0..<batch {
            let g = gradOutput + b * outputCount, dx = gradInput + b * outputCount
            guard let shift = shifts[b] else {
                dx.update(from: g, count: outputCount)
                continue
            }
            dx.update(repeating: 0, count: outputCount)
            forEachTap(dy: shift.dy, dx: shift.dx) { target, source, weight in
                guard let source else { return }
                for k in 0..<c { dx[source + k] += weight * g[target + k] }
            }
        }
    }

    /// Calls `body(output offset, input offset or nil for the constant fill, weight)` for every
    /// input pixel each output pixel reads.
    @inline(__always)
    private func forEachTap(dy: Float, dx: Float, _ body: (Int, Int?, Float) -> Void) {
        for y in 0..<h {
            let sy = Float(y) - dy
            for x in 0..<w {
                let sx = Float(x) - dx
                let target = (y * w + x) * c
                if settings.interpolation == .nearest {
                    // JAX's nearest sample: floor(coordinate + 0.5), halves up.
                    let (iy, ix) = (Int((sy + 0.5).rounded(.down)), Int((sx + 0.5).rounded(.down)))
                    body(target, index(iy, ix), 1)
                    continue
                }
                let y0 = sy.rounded(.down), x0 = sx.rounded(.down)
                let (fy, fx) = (sy - y0, sx - x0)
                let (iy, ix) = (Int(y0), Int(x0))
                if fy != 1 && fx != 1 { body(target, index(iy, ix), (1 - fy) * (1 - fx)) }
                if fy != 1 && fx != 0 { body(target, index(iy, ix + 1), (1 - fy) * fx) }
                if fy != 0 && fx != 1 { body(target, index(iy + 1, ix), fy * (1 - fx)) }
                if fy != 0 && fx != 0 { body(target, index(iy + 1, ix + 1), fy * fx) }
            }
        }
    }

    /// Where pixel (y, x) comes from under the fill mode; nil: the constant.
    private func index(_ y: Int, _ x: Int) -> Int? {
        func map(_ i: Int, _ n: Int) -> Int? {
            if i >= 0 && i < n { return i }
            switch settings.fill {
            case .constant: return nil
            case .nearest: return min(max(i, 0), n - 1)
            case .wrap: return ((i % n) + n) % n
            case .reflect:
                let period = 2 * n
                let j = ((i % period) + period) % period
                return j < n ? j : period - 1 - j
            }
        }
        guard let my = map(y, h), let mx = map(x, w) else { return nil }
        return (my * w + mx) * c
    }
}
