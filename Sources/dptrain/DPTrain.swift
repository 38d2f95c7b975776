import ArgumentParser
import Foundation
import NN

@main
struct DPTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dptrain",
        abstract: "Data-parallel CNN training on image sets (IDX, NumPy, CIFAR, PNG/JPEG folders; MNIST by default): run it alone or under mpirun/srun.",
        subcommands: [Summary.self, Train.self, Evaluate.self, Predict.self, Plot.self, Bench.self])

    /// ArgumentParser prints usage after an error; users asked for one line naming the flag.
    /// Argument errors come before MPI starts, so every rank of a job would print the same line:
    /// only the launcher's rank 0 says it (every rank exits 1).
    static func main() {
        var command: ParsableCommand
        do {
            command = try parseAsRoot()
            try checkEnvironment()
        } catch {
            if exitCode(for: error) == .success { exit(withError: error) }
            if let rank = launcherRank, rank > 0 { Foundation.exit(1) }
            fail(message(for: error))
        }
        do { try command.run() } catch {
            if exitCode(for: error) == .success { exit(withError: error) }
            fail(message(for: error))
        }
    }

    /// A bad DPTRAIN_KERNELS or DPTRAIN_WINOGRAD is refused, not silently replaced by the default.
    static func checkEnvironment() throws {
        if let winograd = ProcessInfo.processInfo.environment["DPTRAIN_WINOGRAD"], !["0", "1"].contains(winograd) {
            throw ValidationError("DPTRAIN_WINOGRAD: '\(winograd)' is not 0 (direct conv kernels only) or 1 (Winograd's where they fit, the default)")
        }
        guard let forced = ProcessInfo.processInfo.environment["DPTRAIN_KERNELS"], !forced.isEmpty else { return }
        let here = KernelPath.available.map(\.name)
        guard here.contains(forced) else {
            throw ValidationError("DPTRAIN_KERNELS: '\(forced)' is not a kernel path this CPU runs; valid: \(here.joined(separator: ", "))")
        }
    }

    /// This process's rank as the launcher set it (Open MPI, MPICH/Hydra, PMIx, Slurm), if any.
    static var launcherRank: Int? {
        let environment = ProcessInfo.processInfo.environment
        return ["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"].lazy.compactMap { environment[$0].flatMap { Int($0) } }.first
    }
}

func fail(_ message: String, prefix: String = "", status: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data("dptrain: \(prefix)error: \(message)\n".utf8))
    exit(status)
}
