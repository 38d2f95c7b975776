import Foundation
import Testing
import TestSupport

/// bench/scaling's cost formulas against values worked out by hand from libnbc's schedules: what
/// a user's prediction before an allocation rests on. (The model against measurement and against
/// SimGrid is `bench/scaling --check`, which needs root and minutes.)
@Suite struct ScalingModelTests {
    /// Evaluates Python expressions with bench/scaling loaded as `s`; one number per expression.
    static func evaluate(_ expressions: [String]) throws -> [Double] {
        let script = """
            import json, sys
            from importlib.machinery import SourceFileLoader
            s = SourceFileLoader("scaling", sys.argv[1]).load_module()
            print(json.dumps([eval(e) for e in json.loads(sys.argv[2])]))
            """
        let list = String(decoding: try JSONSerialization.data(withJSONObject: expressions), as: UTF8.self)
        let result = try run(["/usr/bin/env", "python3", "-c", script, Repo.root.appendingPathComponent("bench/scaling").path, list], timeout: 60)
        #expect(result.status == 0, "\(result)")
        return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [Double], "\(result.stdout)")
    }

    static func close(_ x: Double, _ y: Double) -> Bool { abs(x - y) <= 1e-9 + 1e-9 * abs(y) }

    // a = 10 us, a_r = 30 us, B = 1 GB/s, eager limit 64 KiB, sums free; n = 4 MB.
    static let net = "s.Network(10e-6, 1e9, 30e-6, 65536)"

    @Test func ringTreeAndHalvingFollowLibnbcSchedules() throws {
        let n = 4_000_000.0
        let got = try Self.evaluate([
            "s.allreduce_seconds('ring', 4, \(n), \(Self.net))",
            "s.allreduce_seconds('tree', 4, \(n), \(Self.net))",
            "s.allreduce_seconds('tree', 3, \(n), \(Self.net))",
            "s.allreduce_seconds('ring', 2, 65536, \(Self.net))",
            "s.allreduce_seconds('rabenseifner', 4, \(n), \(Self.net))",
            "s.allreduce_seconds('recursive_doubling', 4, \(n), s.Network(10e-6, 1e9, 30e-6, 65536, 2e9))",
            "s.allreduce_seconds('tree', 1, \(n), \(Self.net))",
            "s.allreduce_seconds('rabenseifner', 3, \(n), \(Self.net))",
        ])
        let a: Double = 10e-6, ar: Double = 30e-6, ms: Double = 1e-3
        // ring: 2(p-1) = 6 rounds of n/4 = 1 MB (past the eager limit): 6 (a_r + 1 ms)
        let ring4: Double = 6 * (ar + ms)
        #expect(Self.close(got[0], ring4), "\(got[0])")
        // tree, p = 4: reduce 2 (a_r + 4 ms); broadcast: rank 0 sends to 1 and 2 at once (8 ms
        // for both), then 1 sends to 3 (4 ms)
        let reduce4: Double = 2 * (ar + 4 * ms), broadcast4: Double = (ar + 8 * ms) + (ar + 4 * ms)
        #expect(Self.close(got[1], reduce4 + broadcast4), "\(got[1])")
        // tree, p = 3: reduce 1 -> 0, then 2 -> 0; broadcast: 0 sends to 1 and 2 at once
        let broadcast3: Double = ar + 8 * ms
        #expect(Self.close(got[2], reduce4 + broadcast3), "\(got[2])")
        // ring, p = 2, 64 KiB: two rounds of 32 KiB, eager: 2 (a + 32,768 B / B)
        let eager: Double = 2 * (a + 32_768e-9)
        #expect(Self.close(got[3], eager), "\(got[3])")
        // Rabenseifner, p = 4: halves of 2 MB then 1 MB, each there and back
        let halving: Double = 2 * (ar + 2 * ms) + 2 * (ar + ms)
        #expect(Self.close(got[4], halving), "\(got[4])")
        // recursive doubling, p = 4: 2 rounds of the whole payload, each summed at 2 GB/s (2 ms)
        let doubling: Double = 2 * (ar + 4 * ms + 2 * ms)
        #expect(Self.close(got[5], doubling), "\(got[5])")
        #expect(got[6] == 0)
        // Rabenseifner, p = 3: ranks 0 and 1 swap 2 MB halves, 1 sends its summed half back,
        // 0 and 2 exchange halves there and back, and 0 sends 1 the whole 4 MB: 5 a_r + 12 ms
        #expect(Self.close(got[7], 5 * ar + 12 * ms), "\(got[7])")
    }

    @Test func fatTreeSharesAHostsLinkByRouteLatency() throws {
        // Leaves of 2 hosts: rank 0's sends to 1 (its leaf: weight 2) and 2 (another leaf)
        // share its link 2:1, so 1 has its 4 MB after 6 ms, 2 after 8 ms; then 1 -> 3 crosses
        // leaves (4 ms). Latency: a_r/2 under a leaf, a_r across.
        let got = try Self.evaluate([
            "s.broadcast_seconds(4, 4e6, s.Network(10e-6, 1e9, 30e-6, 65536, leaf=2))",
            "s.broadcast_seconds(4, 4e6, \(Self.net))",
        ])
        let ar: Double = 30e-6, ms: Double = 1e-3
        let fatTree: Double = ar / 2 + 6 * ms + ar + 4 * ms, flat: Double = ar + 8 * ms + ar + 4 * ms
        #expect(Self.close(got[0], fatTree), "\(got[0])")
        #expect(Self.close(got[1], flat), "\(got[1])")
    }

    @Test func overlapStartsEachBucketWhenItsLayersAreDone() throws {
        // Two layers of 1,000 parameters; the backward pass takes 4 ms in the last, then 6 ms in
        // the first. Buckets of one layer each (5,024 B, the first also the 28 B of slots):
        // the last layer's leaves at 4 ms, the first's at 10 ms; on 2 ranks (ring, a = 1 ms,
        // B = 1 GB/s) each costs 2 (1 ms + half its bytes / B), and only the second one is waited for.
        let bench = #"{"batchSize": 1, "ranks": 1, "times": {"data": 0, "forward": 0, "backward": 0.01, "loss": 0, "update": 0, "reduction": 0}, "layers": [{"name": "first", "backward": 0.006}, {"name": "last", "backward": 0.004}]}"#
        let model = "s.Model(json.loads('\(bench)'), [('first', 1000, None), ('last', 1000, None)], 10, bucket_mb=0.001)"
        let net = "s.Network(1e-3, 1e9)"
        let got = try Self.evaluate([
            "\(model).exposed(2, 1, 'ring', \(net), True)[1]",
            "\(model).exposed(2, 1, 'ring', \(net), False)[1]",
            "\(model).payload",
            "s.payload_of([('conv2d', 832, None), ('max_pooling2d', 0, None), ('conv2d_1', 51264, None), ('dense', 10250, 10)])[0]",
        ])
        let a: Double = 1e-3
        let second: Double = 2 * (a + 2_512e-9), whole: Double = 2 * (a + 5_038e-9)
        #expect(Self.close(got[0], second), "\(got[0])")
        // No overlap: the whole 10,076 B after the backward pass.
        #expect(Self.close(got[1], whole), "\(got[1])")
        #expect(got[2] == 10_076)
        // The reference model's exact-reduction payload: 4 (62,346 + 128 x 6 + 7) bytes.
        #expect(got[3] == 252_484)
    }

    /// Sums in flight share the link but not their latencies: a bucket final while the one before
    /// is still sending ends when its bytes have followed the earlier bucket's, not a whole
    /// reduction later. And a Dense kernel over 1 MB is reduced in row blocks, as dptrain cuts it.
    @Test func bucketsInFlightShareTheLinkAndLargeKernelsComeInBlocks() throws {
        // Two layers of 250,000 parameters: the last's backward takes 9.5 ms, the first's 0.5 ms.
        // Buckets (1,001,052 B with the slots, then 1,001,024 B) are final at 9.5 and 10 ms; ring
        // on 2 ranks, a = 1 ms, a_r = 3 a, B = 1 GB/s: each is 2 (a_r + half its bytes / B).
        let bench = #"{"batchSize": 1, "ranks": 1, "times": {"data": 0, "forward": 0, "backward": 0.01, "loss": 0, "update": 0, "reduction": 0}, "layers": [{"name": "first", "backward": 0.0005}, {"name": "last", "backward": 0.0095}]}"#
        let dense = "[('conv2d', 832, None), ('conv2d_1', 51264, None), ('dense', 1049600, 1024), ('dense_1', 10250, 10)]"
        let got = try Self.evaluate([
            "s.Model(json.loads('\(bench)'), [('first', 250000, None), ('last', 250000, None)], 10, bucket_mb=0.9).exposed(2, 1, 'ring', s.Network(1e-3, 1e9), True)[1]",
            "s.pieces(1049600, 1024)",
            "s.payload_of(\(dense))[0]",
        ].enumerated().map { $0 == 1 ? "len(\($1)) * 1e9 + \($1)[0] * 1e3 + \($1)[-1]" : $1 })
        let ms: Double = 1e-3, ns: Double = 1e-9
        // The second bucket's bytes follow the first's: 9.5 ms + 2 (3 ms + 500,526 ns) + 1,001,024 ns,
        // 10 ms of it the backward pass (one after the other, 7 ms more would be waited for).
        #expect(Self.close(got[0], 9.5 * ms + 2 * (3 * ms + 500_526 * ns) + 1_001_024 * ns - 10 * ms), "\(got[0])")
        // 1024 rows of 1,024 floats in blocks of 256 rows, the last rows (with the bias) first.
        #expect(got[1] == 4e9 + 263_168e3 + 262_144, "\(got[1])")
        // --dense 1024: 4 (1,111,946 parameters + 128 counts x 11 pieces + 7 slots) bytes.
        #expect(got[2] == 4_453_444, "\(got[2])")
    }
}
