import ArgumentParser
import Foundation

@main
struct DPTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dptrain",
        abstract: "Data-parallel CNN training on image sets (IDX, NumPy, CIFAR, PNG/JPEG folders; MNIST by default): run it alone or under mpirun/srun.",
        subcommands: [Summary.self, Train.self, Evaluate.self, Predict.self, Plot.self, Bench.self])

    /// ArgumentParser prints usage after an error; users asked for one line naming the flag.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            if exitCode(for: error) == .success { exit(withError: error) }
            fail(message(for: error))
        }
    }
}

func fail(_ message: String, prefix: String = "", status: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data("dptrain: \(prefix)error: \(message)\n".utf8))
    exit(status)
}
