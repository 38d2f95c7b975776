import ArgumentParser
import Collectives
import Foundation
import Training

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Steady-state training speed, where a step's time goes, and its share of the cores' FMA limit.")
    @OptionGroup var model: ModelOptions
    @OptionGroup var data: DataOptions
    @OptionGroup var scaling: ScalingOptions
    @OptionGroup var precision: PrecisionOption
    @OptionGroup var optimizer: OptimizerOptions
    @OptionGroup var modelFile: ModelFileOption
    @Option(help: "Worker threads per rank (default: as train).") var threads: Int?
    @Option(help: "Steps run before measuring.") var warmup = 20
    @Option(help: "Steps measured.") var steps = 100
    @Flag(help: "Print one JSON record instead of the table.") var json = false

    func validate() throws {
        guard steps > 0, warmup >= 0 else { throw ValidationError("--steps: must be positive, and --warmup 0 or more") }
        if let threads, threads < 1 { throw ValidationError("--threads: must be at least 1") }
    }

    func run() throws {
        var config = BenchmarkConfig()
        config.training.model = try model.layers().graph()
        config.training.dataDirectory = data.path
        config.training.dataLoading = data.loading
        scaling.apply(to: &config.training)
        precision.apply(to: &config.training)
        do { _ = try modelFile.apply(to: &config.training, optimizer: optimizer) } catch { fail("\(error)") }
        config.training.threads = threads
        config.warmupSteps = warmup
        config.steps = steps
        let comm: Communicator
        do { comm = try MPICommunicator() } catch { fail("\(error)") }
        var training = config.training
        if let perRank = training.perRankBatch { training.batchSize = perRank * comm.size }
        do { try training.checkWork(ranks: comm.size) } catch {
            comm.finalize()  // every rank has the same config: all leave together
            fail("\(error)", prefix: comm.size > 1 ? "rank \(comm.rank): " : "")
        }
        let report: BenchmarkReport
        do { report = try runBenchmark(config, communicator: comm) } catch {
            guard comm.size > 1 else { fail("\(error)") }
            // The other ranks may be waiting in a collective: end the job, cause first.
            FileHandle.standardError.write(Data("dptrain: rank \(comm.rank): error: \(error)\n".utf8))
            comm.abort(code: 1)
        }
        if comm.isRoot {
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
            } else {
                print(report.table)
            }
        }
        comm.finalize()
    }
}
