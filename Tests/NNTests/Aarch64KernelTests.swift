import Foundation
import Testing
import TestSupport

/// The portable path as aarch64 builds it (NEON's 32 registers: tiles of 4 vectors and up to 12
/// rows, which no x86 run executes), cross-built and run under qemu-user by
/// `TARGET=aarch64 dev/cpu/run`: every conv pass of dev/cpu's layers (direct, Winograd, fused with
/// pooling) against the double-precision reference, and batch normalisation's passes against the
/// plain loops' bits. Batch 2, one repeat: the emulator's times mean nothing, its results do.
struct Aarch64KernelTests {
    @Test(arguments: ["conv", "bn"]) func portablePathIsRightOnAarch64(bench: String) throws {
        let r = try run([Repo.root.appendingPathComponent("dev/cpu/run").path, bench],
                        environment: ["TARGET": "aarch64", "BATCH": "2", "REPEATS": "1"], timeout: 600)
        #expect(r.status == 0 && !r.stdout.contains("WRONG") && !r.stdout.contains("DIFFERENT"), "\(r)")
        if bench == "conv" {
            // Only the portable path exists there: every layer's three passes and fused passes ran on it.
            let lines = r.stdout.split(separator: "\n")
            #expect(!r.stdout.contains("avx2") && lines.filter { $0.contains(" portable") && $0.contains("error") }.count >= 12 * 5, "\(r)")
        } else {
            #expect(r.stdout.components(separatedBy: "same bits as the plain loops").count - 1 == 4, "\(r)")
        }
    }
}
