import CKernels
import Datasets
import NN
import Foundation
import KerasFiles
import Testing

/// --precision bf16 in the network: the same probabilities and gradients as FP32 up to bf16's
/// rounding of the inputs (2^-9 relative), never the same bits (it did run in bf16), and a
/// sub-batch's result depends on nothing else (the root of "the same bits at any rank and thread
/// count"). On a CPU without AVX512_BF16 the network refuses bf16, saying why.
struct PrecisionTests {
    static func run(_ architecture: Architecture, _ precision: Precision, batch: Int, maxBatch: Int) throws -> (probabilities: [Float], gradients: [Float]) {
        let network = try Network(architecture, maxBatch: maxBatch, precision: precision)
        var rng = SplitMix64(seed: 11)
        network.initialize(using: &rng)
        let x = (0..<(batch * network.inputCount)).map { _ in Float(rng.next() % 1000) / 1000 }
        let labels = (0..<batch).map { Int32($0 % 10) }
        network.computeGradients(x, labels: labels, batch: batch, gradientScale: 1 / Float(batch))
        return (Array(UnsafeBufferPointer(start: network.probabilities, count: batch * 10)), Array(network.gradients))
    }

    @Test(arguments: KernelPathTests.architectures.map(\.0))
    func bf16IsFP32UpToRoundingAndDeterministic(_ name: String) throws {
        let architecture = KernelPathTests.architectures.first { $0.0 == name }!.1
        if let reason = Precision.bf16.unavailable() {
            #expect(throws: NetworkError.self) { try Network(architecture, maxBatch: 2, precision: .bf16) }
            #expect(reason.hasPrefix("this CPU has no AVX512_BF16 ("))
            return
        }
        let fp32 = try Self.run(architecture, .fp32, batch: 6, maxBatch: 6)
        let bf16 = try Self.run(architecture, .bf16, batch: 6, maxBatch: 6)
        #expect(fp32.gradients != bf16.gradients, "\(name): bf16 gave FP32's bits: it did not run in bf16")
        for (a, b) in zip(bf16.probabilities, fp32.probabilities) {
            #expect(abs(a - b) <= 0.01, "\(name): probability \(a) in bf16, \(b) in FP32")
        }
        // Norm-wise and loose: bf16's rounding moves a max-pooling winner or flips a ReLU near zero
        // now and then, which moves single gradient elements by their whole size (up to 12% of a
        // tensor's norm seen here). The kernels' own exactness is checked below.
        let network = try Network(architecture, maxBatch: 1)
        for t in network.trainableTensors {
            let range = t.offset..<(t.offset + t.count)
            let norm = fp32.gradients[range].reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
            let error = zip(bf16.gradients[range], fp32.gradients[range]).reduce(0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }.squareRoot()
            #expect(error <= 0.25 * norm, "\(name) \(t.name): bf16 gradient off by \(error / norm) of its norm")
        }
        let again = try Self.run(architecture, .bf16, batch: 6, maxBatch: 9)
        #expect(again.probabilities == bf16.probabilities && again.gradients == bf16.gradients, "\(name): bf16 not deterministic")
    }

    /// A run asking for bf16 where its dot products are slower than FP32's FMAs (Intel's cores
    /// without AMX) says so at start-up; where they are faster (Zen 4), nothing.
    @Test func bf16SlowdownIsNamedWhereItIsSlower() {
        #expect(Precision.bf16Slowdown(fp32Peak: 168e9, bf16Peak: 84e9) == "this CPU runs BF16 dot products at 84 GFLOP/s and FP32 FMAs at 168: bf16 is slower here than fp32")
        #expect(Precision.bf16Slowdown(fp32Peak: 120e9, bf16Peak: 240e9) == nil)
    }

    /// The unfused conv layers (a conv that batch normalisation follows, 'same' padding, residual
    /// adds, global pooling): the CIFAR-style residual model of examples/keras. Untrained, on noise,
    /// its gradients move by 7-20% when FP32 itself runs on bf16-rounded inputs and weights (ReLUs
    /// after batch normalisation flip near zero): bf16 must stay within twice that of FP32.
    @Test func bf16OnTheCIFARResidualModel() throws {
        guard Precision.bf16.unavailable() == nil else { return }  // the refusal is checked above
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("examples/keras/cifar_resnet.keras").path
        let graph = try KerasModel.read(path: file).graph
        func gradients(_ precision: Precision, rounded: Bool = false) throws -> (Network, [Float], Double) {
            let network = try Network(graph, maxBatch: 4, precision: precision)
            var rng = SplitMix64(seed: 3)
            network.initialize(using: &rng)
            var x = (0..<(4 * network.inputCount)).map { _ in Float(rng.next() % 1000) / 1000 }
            if rounded {
                let p = network.parameters.baseAddress!
                dpk_round_bf16(p, p, network.parameters.count)
                x.withUnsafeMutableBufferPointer { dpk_round_bf16($0.baseAddress!, $0.baseAddress!, $0.count) }
            }
            let totals = network.computeGradients(x, labels: [0, 1, 2, 3], batch: 4, gradientScale: 0.25)
            return (network, Array(network.gradients), totals.lossSum)
        }
        let (network, fp32, fp32Loss) = try gradients(.fp32)
        let (_, bf16, bf16Loss) = try gradients(.bf16)
        let (_, perturbed, _) = try gradients(.fp32, rounded: true)
        #expect(fp32 != bf16 && abs(bf16Loss - fp32Loss) <= 0.01 * fp32Loss, "loss \(bf16Loss) in bf16, \(fp32Loss) in FP32")
        func distance(_ a: [Float], _ range: Range<Int>) -> Double {
            zip(a[range], fp32[range]).reduce(0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }.squareRoot()
        }
        let norms = network.trainableTensors.map { t in fp32[t.offset..<(t.offset + t.count)].reduce(0) { $0 + Double($1) * Double($1) }.squareRoot() }
        for (t, norm) in zip(network.trainableTensors, norms) where norm > 1e-3 * norms.max()! {  // not the biases before batch normalisation (0)
            let range = t.offset..<(t.offset + t.count)
            let (error, own) = (distance(bf16, range) / norm, distance(perturbed, range) / norm)
            #expect(error <= 2 * own + 0.02, "\(t.name): bf16 gradient off by \(error) of its norm, FP32 on rounded inputs by \(own)")
        }
    }

    /// Each BF16 pass against the definition in double on the same bf16-rounded inputs: FP32
    /// summation's error only. Geometries: an odd kw·in_c (a half pair along the reduction), stride 2
    /// with an odd output width (a half pair of columns), conv2 of the reference model, and images
    /// large enough that a batch of 4 is two of the weight gradient's chunks (3 + 1), with 16
    /// filters (8 pairs: the transposed kernel's part-block).
    @Test(arguments: [(9, 9, 3, 3, 1, 16, 2), (11, 11, 16, 3, 2, 32, 2), (12, 12, 32, 5, 1, 64, 2), (40, 40, 16, 3, 1, 16, 4)])
    func bf16PassesMatchTheirDefinition(_ shape: (Int, Int, Int, Int, Int, Int, Int)) throws {
        guard Precision.bf16.unavailable() == nil else { return }  // the refusal is checked above
        let (h, w, c, k, s, f, batch) = shape
        let (oh, ow) = ((h - k) / s + 1, (w - k) / s + 1)
        var g = dpk_conv(in_h: Int32(h), in_w: Int32(w), in_c: Int32(c), kernel: Int32(k), stride: Int32(s), filters: Int32(f),
                         out_h: Int32(oh), out_w: Int32(ow), linear: 1, direct: 0, border: 0)
        var rng = SplitMix64(seed: 5)
        func randoms(_ n: Int) -> [Float] { (0..<n).map { _ in Float(rng.next() % 2001) / 1000 - 1 } }
        func rounded(_ x: [Float]) -> [Float] {
            var r = x
            dpk_round_bf16(x, &r, x.count)
            return r
        }
        let (x, kernel, bias, dout) = (randoms(batch * h * w * c), randoms(k * k * c * f), randoms(f), randoms(batch * oh * ow * f))
        let (xr, kr, dr) = (rounded(x), rounded(kernel), rounded(dout))
        #expect(xr != x && xr.count == x.count)
        let work = UnsafeMutableRawPointer.allocate(byteCount: dpk_bf16_workspace(&g, Int32(batch)), alignment: 64)
        defer { work.deallocate() }
        var out = [Float](repeating: .nan, count: dout.count), dw = [Float](repeating: .nan, count: kernel.count)
        var din = [Float](repeating: .nan, count: x.count)
        dpk_bf16_conv_forward(&g, x, kernel, bias, &out, work, Int32(batch))
        let withInput = (k * c) % 16 == 0
        din.withUnsafeMutableBufferPointer { d in
            dpk_bf16_conv_backward(&g, dout, kernel, work, &dw, withInput ? d.baseAddress : nil, Int32(batch))
        }

        var refOut = [Double](repeating: 0, count: out.count), refDw = [Double](repeating: 0, count: dw.count)
        var refDin = [Double](repeating: 0, count: din.count)
        for n in 0..<batch { for y in 0..<oh { for xo in 0..<ow { for kh in 0..<k { for kw in 0..<k { for ch in 0..<c {
            let i = ((n * h + y * s + kh) * w + xo * s + kw) * c + ch
            for o in 0..<f {
                let (wi, oi) = (((kh * k + kw) * c + ch) * f + o, ((n * oh + y) * ow + xo) * f + o)
                refOut[oi] += Double(xr[i]) * Double(kr[wi])
                refDw[wi] += Double(xr[i]) * Double(dr[oi])
                refDin[i] += Double(dr[oi]) * Double(kr[wi])
            }
        } } } } } }
        for i in refOut.indices { refOut[i] += Double(bias[i % f]) }
        func error(_ got: [Float], _ want: [Double]) -> Double {
            zip(got, want).map { abs(Double($0) - $1) }.max()! / want.map(abs).max()!
        }
        #expect(error(out, refOut) <= 1e-5, "\(shape) forward: \(error(out, refOut))")
        #expect(error(dw, refDw) <= 1e-5, "\(shape) weight gradient: \(error(dw, refDw))")
        if withInput { #expect(error(din, refDin) <= 1e-5, "\(shape) input gradient: \(error(din, refDin))") }
    }
}
