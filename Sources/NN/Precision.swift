import CKernels

/// What the conv and dense layers multiply: FP32, or BF16 inputs with FP32 sums (AVX512_BF16's
/// vdpbf16ps, twice the FP32 FMA rate on Zen 4, half of it on Intel's cores). Weights, gradients, optimizer state and the reduction are
/// FP32 either way.
public enum Precision: String, Codable, Sendable, CaseIterable {
    case fp32, bf16

    /// Why `path` cannot run this precision here (nil when it can): BF16 needs a CPU with
    /// AVX512_BF16 and the avx512 kernels; a forced narrower path (DPTRAIN_KERNELS) stands for a
    /// CPU without it.
    public func unavailable(on path: KernelPath = Kernels.path) -> String? {
        guard self == .bf16 else { return nil }
        if dpk_bf16_available() == 0 {
            return "this CPU has no AVX512_BF16 (it runs the \(path.name) kernels; --precision fp32 runs everywhere)"
        }
        if path.name != "avx512" {
            return "this CPU has no AVX512_BF16 (DPTRAIN_KERNELS=\(path.name) stands for a CPU without it: the bf16 kernels need the avx512 path)"
        }
        return nil
    }

    /// Why BF16 runs slower than FP32 on this CPU (nil where it is faster), from the two dot
    /// loops' rates: Intel's cores run vdpbf16ps at half their FP32 FMA rate (only AMX, which
    /// dptrain does not use, is faster there), Zen 4's at twice.
    public static func bf16Slowdown(fp32Peak: Double = dpk_fma_peak(nil, 0.02), bf16Peak: Double = dpk_bf16_peak(0.02)) -> String? {
        guard bf16Peak < 1.1 * fp32Peak else { return nil }
        return "this CPU runs BF16 dot products at \(Int(bf16Peak / 1e9)) GFLOP/s and FP32 FMAs at \(Int(fp32Peak / 1e9)): bf16 is slower here than fp32"
    }

    /// Rounds `count` floats to bf16 (nearest even), kept as floats: a product of two is exact in
    /// FP32, so an FP32 GEMM over them is a BF16 GEMM with FP32 sums.
    static func round(_ source: UnsafePointer<Float>, into destination: UnsafeMutablePointer<Float>, count: Int) {
        dpk_round_bf16(source, destination, count)
    }
}
