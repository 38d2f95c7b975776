import CKernels
import Datasets
import NN
import Testing

/// Winograd's kernels (F(4×4, 3×3), F(2×2, 5×5)) against the conv's definition in double, on every
/// path this CPU runs: their error is transform rounding only (bound 3e-5 of the largest value,
/// as `dev/cpu`'s), they really ran (`dpk_conv_winograd`), and where they skip a pass, the direct
/// kernels get it. Geometries: a 'same' 3×3 whose input gradient skips the border, on sizes that
/// cut tiles (7×7: two of 4 columns, the second half outside), the reference model's conv2, and a
/// 3×3 'valid' conv whose full-conv input gradient saves too little (direct).
struct WinogradTests {
    /// (in_h = in_w, in_c, kernel, filters, border, passes that must run Winograd: forward, weights, input)
    static let shapes: [(Int, Int, Int, Int, Int, [Bool])] = [
        (9, 16, 3, 16, 1, [true, true, true]),
        (18, 32, 3, 32, 1, [true, true, true]),
        (12, 32, 5, 64, 0, [true, true, false]),
        (13, 16, 3, 32, 0, [true, true, false]),
    ]

    /// Every kernel path; each test skips those this CPU does not run.
    static let paths = ["avx512", "avx2", "portable"]

    /// Values in [-1, 1] in steps of 0.001, drawn from `rng`.
    static func randoms(_ n: Int, _ rng: inout SplitMix64) -> [Float] { (0..<n).map { _ in Float(rng.next() % 2001) / 1000 - 1 } }

    /// A stride-1 'valid' conv of x [batch][h][h][c] with kernel [k][k][c][f], in double: its output
    /// (without bias), and the weight and input gradients of dout.
    static func definition(x: [Float], kernel: [Float], dout: [Double], h: Int, c: Int, k: Int, f: Int, batch: Int)
        -> (out: [Double], dw: [Double], din: [Double]) {
        let o = h - k + 1
        var out = [Double](repeating: 0, count: dout.count), dw = [Double](repeating: 0, count: kernel.count)
        var din = [Double](repeating: 0, count: x.count)
        for n in 0..<batch { for y in 0..<o { for xo in 0..<o { for kh in 0..<k { for kw in 0..<k { for ch in 0..<c {
            let i = ((n * h + y + kh) * h + xo + kw) * c + ch
            for fo in 0..<f {
                let (wi, oi) = (((kh * k + kw) * c + ch) * f + fo, ((n * o + y) * o + xo) * f + fo)
                out[oi] += Double(x[i]) * Double(kernel[wi])
                dw[wi] += Double(x[i]) * dout[oi]
                din[i] += dout[oi] * Double(kernel[wi])
            }
        } } } } } }
        return (out, dw, din)
    }

    /// The largest error over `indices` (all by default), relative to the largest value there.
    static func error(_ got: [Float], _ want: [Double], at indices: [Int]? = nil) -> Double {
        let at = indices ?? Array(want.indices)
        return at.map { abs(Double(got[$0]) - want[$0]) }.max()! / at.map { abs(want[$0]) }.max()!
    }

    @Test(arguments: shapes.indices)
    func passesMatchTheDefinition(_ index: Int) throws {
        let (h, c, k, f, border, winograd) = Self.shapes[index]
        let (o, batch) = (h - k + 1, 3)
        var g = dpk_conv(in_h: Int32(h), in_w: Int32(h), in_c: Int32(c), kernel: Int32(k), stride: 1, filters: Int32(f),
                         out_h: Int32(o), out_w: Int32(o), linear: 1, direct: 0, border: Int32(border))
        var rng = SplitMix64(seed: 7)
        var x = Self.randoms(batch * h * h * c, &rng)
        // Padding is zeros, as the layers' padded copy holds.
        for n in 0..<batch { for y in 0..<h { for xi in 0..<h where min(y, xi) < border || max(y, xi) >= h - border {
            for ch in 0..<c { x[((n * h + y) * h + xi) * c + ch] = 0 }
        } } }
        let kernel = Self.randoms(k * k * c * f, &rng), bias = Self.randoms(f, &rng), dout = Self.randoms(batch * o * o * f, &rng)
        let (unbiased, refDw, refDin) = Self.definition(x: x, kernel: kernel, dout: dout.map(Double.init), h: h, c: c, k: k, f: f, batch: batch)
        let refOut = unbiased.indices.map { unbiased[$0] + Double(bias[$0 % f]) }
        // The border's input gradient is not the kernels' to write.
        let interior = x.indices.filter { i in
            let (y, xi) = (i / c / h % h, i / c % h)
            return min(y, xi) >= border && max(y, xi) < h - border
        }

        for path in Self.paths {
            guard let kernels = dpk_path_named(path) else { continue }
            let passes = [DPK_FORWARD, DPK_BACKWARD_WEIGHTS, DPK_BACKWARD_INPUT].map { dpk_conv_winograd(kernels, &g, Int32($0)) != 0 }
            #expect(passes == winograd, "\(path) \(Self.shapes[index]): Winograd runs \(passes)")
            var out = [Float](repeating: .nan, count: dout.count), dw = [Float](repeating: .nan, count: kernel.count)
            var din = [Float](repeating: .nan, count: x.count), wt = [Float](repeating: 0, count: kernel.count)
            dpk_conv_forward(kernels, &g, x, kernel, bias, &out, Int32(batch))
            dpk_conv_backward_weights(kernels, &g, x, dout, &dw, Int32(batch))
            dpk_conv_backward_input(kernels, &g, dout, kernel, &wt, &din, Int32(batch))
            let errors = [Self.error(out, refOut), Self.error(dw, refDw), Self.error(din, refDin, at: interior)]
            for (pass, e) in zip(["forward", "weight gradient", "input gradient"], errors) {
                #expect(e <= 3e-5, "\(path) \(Self.shapes[index]) \(pass): \(e)")
            }
            // Not the direct kernels' bits: what ran was Winograd's.
            var direct = g, directOut = out
            direct.direct = 1
            dpk_conv_forward(kernels, &direct, x, kernel, bias, &directOut, Int32(batch))
            #expect(directOut != out, "\(path): the forward pass has the direct kernels' bits")
        }
    }

    /// The fused conv + ReLU + 2×2 pool backward sums the Winograd weight gradient over chunks of
    /// images (16 of the reference conv2's); over 17 images (two chunks, the second one image),
    /// dw, db and din match the definition on the unpooled gradient, on every path.
    @Test func fusedBackwardSumsEveryChunk() throws {
        let (h, c, k, f, batch) = (12, 32, 5, 64, 17)
        let (o, p) = (h - k + 1, (h - k + 1) / 2)
        var g = dpk_conv(in_h: Int32(h), in_w: Int32(h), in_c: Int32(c), kernel: Int32(k), stride: 1, filters: Int32(f),
                         out_h: Int32(o), out_w: Int32(o), linear: 0, direct: 0, border: 0)
        var rng = SplitMix64(seed: 11)
        let x = Self.randoms(batch * h * h * c, &rng), kernel = Self.randoms(k * k * c * f, &rng)
        let bias = Self.randoms(f, &rng), dpooled = Self.randoms(batch * p * p * f, &rng)
        for path in Self.paths {
            guard let kernels = dpk_path_named(path) else { continue }
            #expect(dpk_conv_winograd(kernels, &g, Int32(DPK_BACKWARD_WEIGHTS)) != 0, "\(path): the weight gradient is Winograd's")
            var pooled = [Float](repeating: 0, count: dpooled.count), argmax = [Int32](repeating: 0, count: dpooled.count)
            var scratch = [Float](repeating: 0, count: o * o * f)
            dpk_conv_pool_forward(kernels, &g, 2, x, kernel, bias, &pooled, &argmax, &scratch, Int32(batch))
            // The unpooled gradient: each window's gradient at its winner, where ReLU passed it.
            var dconv = [Double](repeating: 0, count: batch * o * o * f), refDb = [Double](repeating: 0, count: f)
            for n in 0..<batch { for q in 0..<(p * p * f) where pooled[n * p * p * f + q] > 0 {
                dconv[n * o * o * f + Int(argmax[n * p * p * f + q])] = Double(dpooled[n * p * p * f + q])
                refDb[q % f] += Double(dpooled[n * p * p * f + q])
            } }
            let (_, refDw, refDin) = Self.definition(x: x, kernel: kernel, dout: dconv, h: h, c: c, k: k, f: f, batch: batch)
            var dw = [Float](repeating: .nan, count: kernel.count), db = [Float](repeating: .nan, count: f)
            var din = [Float](repeating: .nan, count: x.count), wt = [Float](repeating: 0, count: kernel.count)
            dpk_conv_pool_backward(kernels, &g, 2, x, pooled, argmax, dpooled, kernel, &wt, &scratch, &dw, &db, &din, Int32(batch))
            for (pass, got, want) in [("dw", dw, refDw), ("db", db, refDb), ("din", din, refDin)] {
                let e = Self.error(got, want)
                #expect(e <= 3e-5, "\(path) fused backward \(pass): \(e)")
            }
        }
    }

    /// A first layer's conv + ReLU + 2×2 pool in registers (mnist_convnet's 3×3, the reference
    /// model's 5×5; 26 and 24 columns, so 13 and 12 windows a row) gives the bits of the conv
    /// followed by `dpk_max_pool`, the first winner included: on values whose windows tie (quarters,
    /// halves and ReLU's zeros) and on values that do not, on every path.
    @Test(arguments: [3, 5])
    func fusedFirstLayerPoolsAsMaxPool(_ k: Int) throws {
        let (h, f, batch) = (28, 32, 3)
        let o = h - k + 1, p = o / 2
        var g = dpk_conv(in_h: Int32(h), in_w: Int32(h), in_c: 1, kernel: Int32(k), stride: 1, filters: Int32(f),
                         out_h: Int32(o), out_w: Int32(o), linear: 0, direct: 0, border: 0)
        var rng = SplitMix64(seed: 5)
        let coarse = { (n: Int, steps: UInt64) in (0..<n).map { _ in Float(rng.next() % steps) / Float(steps - 1) - 0.5 } }
        let cases: [(String, [Float], [Float], [Float])] = [
            ("ties", coarse(batch * h * h, 3), coarse(k * k * f, 5), coarse(f, 3)),
            ("no ties", Self.randoms(batch * h * h, &rng), Self.randoms(k * k * f, &rng), Self.randoms(f, &rng)),
        ]
        for path in Self.paths {
            guard let kernels = dpk_path_named(path) else { continue }
            for (name, x, kernel, bias) in cases {
                var conv = [Float](repeating: 0, count: batch * o * o * f)
                var want = [Float](repeating: 0, count: batch * p * p * f), wantArgmax = [Int32](repeating: 0, count: want.count)
                dpk_conv_forward(kernels, &g, x, kernel, bias, &conv, Int32(batch))
                dpk_max_pool(kernels, conv, &want, &wantArgmax, Int32(batch), Int32(o), Int32(o), Int32(f), 2)
                var pooled = [Float](repeating: .nan, count: want.count), argmax = [Int32](repeating: -1, count: want.count)
                var scratch = [Float](repeating: 0, count: o * o * f)
                dpk_conv_pool_forward(kernels, &g, 2, x, kernel, bias, &pooled, &argmax, &scratch, Int32(batch))
                #expect(pooled.map(\.bitPattern) == want.map(\.bitPattern), "\(path) \(k)x\(k) \(name): pooled values")
                // dpk_max_pool's winners index the batch; the fused pass's, each image's conv output.
                let perImage = wantArgmax.indices.map { wantArgmax[$0] - Int32($0 / (p * p * f) * o * o * f) }
                #expect(argmax == perImage, "\(path) \(k)x\(k) \(name): winners")
                if name == "ties" {
                    #expect(want.filter { $0 == 0 }.count > want.count / 10, "ReLU zeros fill whole windows")
                }
            }
        }
    }

    /// The transformed kernels are kept between calls, keyed by the weights: weights changed in place
    /// (an optimizer step) give the bits of the same weights at a new address (transformed afresh),
    /// in the forward pass and the input gradient, on every path.
    @Test func keptKernelsFollowTheWeights() throws {
        let (h, c, k, f, batch) = (9, 16, 3, 16, 2)
        var g = dpk_conv(in_h: Int32(h), in_w: Int32(h), in_c: Int32(c), kernel: Int32(k), stride: 1, filters: Int32(f),
                         out_h: Int32(h - 2), out_w: Int32(h - 2), linear: 1, direct: 0, border: 1)
        var rng = SplitMix64(seed: 5)
        let x = Self.randoms(batch * h * h * c, &rng), bias = Self.randoms(f, &rng), dout = Self.randoms(batch * (h - 2) * (h - 2) * f, &rng)
        let w = UnsafeMutableBufferPointer<Float>.allocate(capacity: k * k * c * f)
        defer { w.deallocate() }
        for path in Self.paths {
            guard let kernels = dpk_path_named(path) else { continue }
            #expect(dpk_conv_winograd(kernels, &g, Int32(DPK_FORWARD)) != 0 && dpk_conv_winograd(kernels, &g, Int32(DPK_BACKWARD_INPUT)) != 0)
            func passes(_ weights: UnsafePointer<Float>) -> [Float] {
                var out = [Float](repeating: 0, count: dout.count), din = [Float](repeating: 0, count: x.count)
                var wt = [Float](repeating: 0, count: w.count)
                dpk_conv_forward(kernels, &g, x, weights, bias, &out, Int32(batch))
                dpk_conv_backward_input(kernels, &g, dout, weights, &wt, &din, Int32(batch))
                return out + din
            }
            for (i, v) in Self.randoms(w.count, &rng).enumerated() { w[i] = v }
            let before = passes(w.baseAddress!)
            w[w.count / 2] += 0.5  // one weight changed in place
            let after = passes(w.baseAddress!), moved = Array(w)
            let fresh = moved.withUnsafeBufferPointer { passes($0.baseAddress!) }
            let (used, same) = (after != before, after == fresh)
            #expect(used, "\(path): the changed weight was not used")
            #expect(same, "\(path): kept kernels differ from fresh ones")
        }
    }
}
