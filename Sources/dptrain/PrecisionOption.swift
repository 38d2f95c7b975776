import ArgumentParser
import NN
import Training

extension Precision: ExpressibleByArgument {}

/// `--precision`: what the conv and dense layers multiply in; bf16 is refused, before MPI starts,
/// on a CPU (or a forced kernel path) without AVX512_BF16.
struct PrecisionOption: ParsableArguments {
    @Option(help: "fp32, or bf16: conv and dense layers on bf16 inputs with FP32 sums (CPUs with AVX512_BF16); weights, gradients and the optimizer stay FP32.")
    var precision = TrainingConfig().computePrecision

    func validate() throws {
        if let reason = precision.unavailable() { throw ValidationError("--precision \(precision.rawValue): \(reason)") }
    }

    func apply(to config: inout TrainingConfig) { config.precision = precision }
}
