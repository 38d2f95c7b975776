import CBLAS
import CKernels

/// Which conv kernels a layer runs: one instruction set of CKernels, or "im2col" (im2col + OpenBLAS,
/// the general path every shape has).
public struct KernelPath: @unchecked Sendable {
    public let name: String
    /// nil for im2col.
    let kernels: OpaquePointer?

    /// nil when this CPU or build lacks it.
    public init?(named name: String) {
        if name == "im2col" {
            kernels = nil
        } else if let kernels = dpk_path_named(name) {
            self.kernels = kernels
        } else {
            return nil
        }
        self.name = name
    }

    /// Every path this machine can run, fastest first.
    public static var available: [KernelPath] { ["avx512", "avx2", "portable", "im2col"].compactMap(KernelPath.init(named:)) }
}

/// Straight-line kernels over raw NHWC buffers. Batches are contiguous; nothing here allocates.
/// The conv passes run in CKernels (see `pathName`); these are the general path and the rest.
public enum Kernels {
    /// The path layers built on this task take: DPTRAIN_KERNELS (avx512, avx2, portable or im2col)
    /// when this CPU has it, else the fastest. Tests bind another with `Kernels.$path.withValue`.
    @TaskLocal public static var path: KernelPath = {
        let forced = getenv("DPTRAIN_KERNELS").map { String(cString: $0) } ?? ""
        return KernelPath(named: forced) ?? KernelPath(named: String(cString: dpk_path_name(dpk_best_path())))!
    }()

    /// Whether convs may run Winograd's kernels where they fit (the default): DPTRAIN_WINOGRAD=0
    /// keeps them on the direct kernels, for their bits (Winograd rounds more, and breaks the exact
    /// ties a constant background gives max pooling).
    public static let winograd = getenv("DPTRAIN_WINOGRAD").map { String(cString: $0) } != "0"

    /// "avx512", "avx2", "portable" or "im2col": what the conv layers run on.
    public static var pathName: String { path.name }

    /// FTZ + DAZ on the calling thread: every thread that runs a kernel calls this once.
    public static func flushDenormals() { dpk_flush_denormals() }

    /// Monotonic seconds.
    public static func now() -> Double { dpk_now() }

    /// The limit of `precision` on the calling thread, run for about `seconds`: the FMA loop of
    /// the path's vectors (im2col: the fastest path's), or for bf16 a vdpbf16ps loop.
    public static func peak(_ precision: Precision, seconds: Double) -> Double {
        precision == .bf16 ? dpk_bf16_peak(seconds) : dpk_fma_peak(path.kernels, seconds)
    }

    /// C[M,N] = A[M,K]·B[K,N] (+ C when `accumulate`), row-major, optionally transposing A or B;
    /// `lda`: A's row stride when A is a block of a wider matrix (default: packed).
    @inline(__always)
    static func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
                     _ a: UnsafePointer<Float>, lda: Int? = nil, _ b: UnsafePointer<Float>, _ c: UnsafeMutablePointer<Float>,
                     accumulate: Bool = false) {
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), 1, a, Int32(lda ?? (transA ? m : k)), b, Int32(transB ? k : n),
                    accumulate ? 1 : 0, c, Int32(n))
    }

    /// Unfolds every receptive field into a row: cols[(b,oh,ow), (kh,kw,c)], zeros for padding.
    public static func im2col(_ input: UnsafePointer<Float>, _ cols: UnsafeMutablePointer<Float>, batch: Int, _ g: ConvGeometry) {
        let c = g.inChannels, k = g.kernel
        let rowLength = k * c
        var row = cols
        for b in 0..<batch {
            let image = input + b * g.inHeight * g.inWidth * c
            for oh in 0..<g.outHeight {
                let ih0 = oh * g.stride - g.padTop
                for ow in 0..<g.outWidth {
                    let iw0 = ow * g.stride - g.padLeft
                    let fullRow = iw0 >= 0 && iw0 + k <= g.inWidth
                    for kh in 0..<k {
                        let ih = ih0 + kh
                        let dest = row + kh * rowLength
                        if ih < 0 || ih >= g.inHeight {
                            dest.update(repeating: 0, count: rowLength)
                        } else if fullRow {
                            // The kw positions are adjacent in NHWC memory: one copy.
                            copy(image + (ih * g.inWidth + iw0) * c, to: dest, count: rowLength)
                        } else {
                            for kw in 0..<k {
                                let iw = iw0 + kw
                                if iw < 0 || iw >= g.inWidth {
                                    (dest + kw * c).update(repeating: 0, count: c)
                                } else {
                                    (dest + kw * c).update(from: image + (ih * g.inWidth + iw) * c, count: c)
                                }
                            }
                        }
                    }
                    row += g.patchSize
                }
            }
        }
    }

    /// memcpy costs more than a loop for the 5-float rows of a one-channel input.
    @inline(__always)
    private static func copy(_ source: UnsafePointer<Float>, to dest: UnsafeMutablePointer<Float>, count: Int) {
        if count < 32 {
            for i in 0..<count { dest[i] = source[i] }
        } else {
            dest.update(from: source, count: count)
        }
    }

    /// The adjoint of im2col: adds every row of `cols` back onto the input positions it came from.
    public static func col2im(_ cols: UnsafePointer<Float>, _ gradInput: UnsafeMutablePointer<Float>, batch: Int, _ g: ConvGeometry) {
        let c = g.inChannels, k = g.kernel
        gradInput.update(repeating: 0, count: batch * g.inHeight * g.inWidth * c)
        var row = cols
        for b in 0..<batch {
            let image = gradInput + b * g.inHeight * g.inWidth * c
            for oh in 0..<g.outHeight {
                let ih0 = oh * g.stride - g.padTop
                for ow in 0..<g.outWidth {
                    let iw0 = ow * g.stride - g.padLeft
                    for kh in 0..<k {
                        let ih = ih0 + kh
                        guard ih >= 0 && ih < g.inHeight else { continue }
                        let source = row + kh * k * c
                        for kw in 0..<k {
                            let iw = iw0 + kw
                            guard iw >= 0 && iw < g.inWidth else { continue }
                            let dest = image + (ih * g.inWidth + iw) * c
                            let src = source + kw * c
                            for ch in 0..<c { dest[ch] += src[ch] }
                        }
                    }
                    row += g.patchSize
                }
            }
        }
    }

    /// out[r, :] = max(out[r, :] + bias, 0) (or without the max when `relu` is false).
    static func addBias(_ out: UnsafeMutablePointer<Float>, rows: Int, _ bias: UnsafePointer<Float>, columns: Int, relu: Bool) {
        var p = out
        for _ in 0..<rows {
            if relu {
                for j in 0..<columns { p[j] = max(p[j] + bias[j], 0) }
            } else {
                for j in 0..<columns { p[j] += bias[j] }
            }
            p += columns
        }
    }

    /// Backward of ReLU on the layer's own output: zero the gradient where the unit was off.
    static func reluBackward(_ grad: UnsafeMutablePointer<Float>, output: UnsafePointer<Float>, count: Int) {
        let vectorCount = count / 8 * 8
        var i = 0
        while i < vectorCount {
            let out = UnsafeRawPointer(output + i).loadUnaligned(as: SIMD8<Float>.self)
            var g = UnsafeRawPointer(grad + i).loadUnaligned(as: SIMD8<Float>.self)
            g.replace(with: 0, where: out .<= 0)
            UnsafeMutableRawPointer(grad + i).storeBytes(of: g, as: SIMD8<Float>.self)
            i += 8
        }
        while i < count {
            if output[i] <= 0 { grad[i] = 0 }
            i += 1
        }
    }

    /// out = max(x, 0), eight at a time.
    static func relu(_ x: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int) {
        let vectorCount = count / 8 * 8
        var i = 0
        while i < vectorCount {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(out + i).storeBytes(of: v.replacing(with: 0, where: v .< 0), as: SIMD8<Float>.self)
            i += 8
        }
        while i < count {
            out[i] = max(x[i], 0)
            i += 1
        }
    }

    /// bias gradient: column sums of grad[rows, columns].
    static func columnSums(_ grad: UnsafePointer<Float>, rows: Int, columns: Int, into out: UnsafeMutablePointer<Float>) {
        dpk_column_sums(grad, rows, Int32(columns), out)
    }

    /// Softmax cross-entropy from logits, fused: probabilities, and when labels are given the
    /// summed loss, the number of correct predictions, and dLoss/dlogits scaled by `gradientScale` (1 / global batch size).
    static func softmaxCrossEntropy(logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>?, batch: Int, classes: Int,
                                    probabilities: UnsafeMutablePointer<Float>, gradient: UnsafeMutablePointer<Float>?,
                                    gradientScale: Float) -> (lossSum: Double, correct: Int) {
        var lossSum = 0.0
        var correct = 0
        for b in 0..<batch {
            let z = logits + b * classes, p = probabilities + b * classes
            var best = 0
            for j in 1..<classes where z[j] > z[best] { best = j }
            let m = z[best]
            var sum: Float = 0
            for j in 0..<classes {
                p[j] = expf(z[j] - m)
                sum += p[j]
            }
            let inverse = 1 / sum
            for j in 0..<classes { p[j] *= inverse }
            guard let labels else { continue }
            let label = Int(labels[b])
            lossSum += Double(logf(sum) + m - z[label])
            if best == label { correct += 1 }
            if let gradient {
                let g = gradient + b * classes
                for j in 0..<classes { g[j] = p[j] * gradientScale }
                g[label] -= gradientScale
            }
        }
        return (lossSum, correct)
    }
}

#if canImport(Glibc)
import Glibc
#endif
