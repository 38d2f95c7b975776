import ModelFiles
import NN
import Foundation
import Testing
import TestSupport
import Training

/// `--precision bf16` end to end: the same bits at any rank and thread count, a loss near FP32's,
/// and one refusal line where the CPU (here: the avx2 kernel path standing for one) has no AVX512_BF16.
@Suite(.serialized)
struct PrecisionTests {
    /// This process reads DPTRAIN_KERNELS as dptrain does.
    static var bf16Here: Bool { Precision.bf16.unavailable() == nil }

    @Test func bf16GivesTheSameBitsAtEveryRankAndThreadCountAndFollowsFP32() throws {
        let common = ["train", "--max-steps", "60", "--seed", "3"]
        guard Self.bf16Here else {
            let refused = try dptrain(common + ["--precision", "bf16", "--run-dir", Repo.scratch("bf16-refused")])
            #expect(refused.status == 1 && refused.stderr.hasPrefix("dptrain: error: --precision bf16: this CPU has no AVX512_BF16 ("), "\(refused)")
            return
        }
        let reference = Repo.scratch("bf16-np1-t1")
        #expect(try dptrain(common + ["--precision", "bf16", "--threads", "1", "--run-dir", reference]).status == 0)
        let weights = try MPITests.weights(reference)
        for (ranks, threads) in [(1, 2), (2, 1)] {
            let dir = Repo.scratch("bf16-np\(ranks)-t\(threads)")
            let result = try dptrain(common + ["--precision", "bf16", "--threads", "\(threads)", "--run-dir", dir], ranks: ranks > 1 ? ranks : nil)
            #expect(result.status == 0, "\(result)")
            let difference = MPITests.relativeDifference(weights, try MPITests.weights(dir))
            #expect(difference == 0, "bf16 at np=\(ranks), \(threads) threads: weights differ by \(difference) relative")
        }
        let fp32 = Repo.scratch("fp32-np1-t2")
        #expect(try dptrain(common + ["--threads", "2", "--run-dir", fp32]).status == 0)
        let difference = MPITests.relativeDifference(weights, try MPITests.weights(fp32))
        #expect(difference > 0 && difference < 0.02, "bf16 and FP32 weights after 60 steps differ by \(difference) relative")
        let (bf16Loss, fp32Loss) = (try runSummary(reference)["test_loss"] as! Double, try runSummary(fp32)["test_loss"] as! Double)
        #expect(abs(bf16Loss - fp32Loss) <= 0.02 * fp32Loss, "test loss after 60 steps: bf16 \(bf16Loss), FP32 \(fp32Loss)")
        #expect((try runSummary(reference)["config"] as? [String: Any])?["precision"] as? String == "bf16")
    }

    /// The avx2 path stands for a CPU without AVX-512: one line, exit 1, nothing written, from
    /// train and bench, and once under mpirun.
    @Test func bf16IsRefusedWithOneLineWithoutAVX512BF16() throws {
        let environment = ["DPTRAIN_KERNELS": "avx2"]
        let dir = Repo.scratch("bf16-avx2")
        for arguments in [["train", "--precision", "bf16", "--run-dir", dir], ["bench", "--precision", "bf16"]] {
            let result = try run([Repo.dptrain] + arguments, environment: environment)
            #expect(result.status == 1 && result.stderrLines.count == 1 && result.stdout.isEmpty, "\(result)")
            #expect(result.stderr.hasPrefix("dptrain: error: --precision bf16: this CPU has no AVX512_BF16 ("), "\(result)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/summary.json") && !FileManager.default.fileExists(atPath: dir + "/dptrain.lock"))
        let launched = try run(MPIFlavour.current.command(["train", "--precision", "bf16", "--run-dir", dir], ranks: 2),
                               environment: Repo.mpiEnvironment.merging(environment) { $1 })
        #expect(launched.status != 0 && launched.stderrLines.filter { $0.contains("--precision bf16") }.count == 1, "\(launched)")
        let bogus = try dptrain(["train", "--precision", "fp16"])
        #expect(bogus.status == 1 && bogus.stderrLines.count == 1 && bogus.stderr.contains("--precision"), "\(bogus)")
    }
}
