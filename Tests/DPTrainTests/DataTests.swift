import Datasets
import Foundation
import Testing
import TestSupport

/// The IDX reader and its checks, on the embedded MNIST and on broken copies of it.
struct DataTests {
    @Test func sha256MatchesStandardVectors() {
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        // 1,000,000 'a': crosses many blocks and the length encoding.
        #expect(SHA256.hex([UInt8](repeating: 0x61, count: 1_000_000)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func embeddedMNISTLoadsAndVerifies() throws {
        let mnist = try Dataset(directory: Repo.data)
        #expect(mnist.verifiedByManifest)
        #expect(mnist.train.count == 60_000 && mnist.test.count == 10_000)
        #expect(mnist.train.height == 28 && mnist.train.width == 28 && mnist.train.channels == 1 && mnist.classes == 10)
        // The raw sums every MNIST copy shares (sha256sum wrote the manifest).
        let sums = try String(contentsOfFile: Repo.data + "/SHA256SUMS.raw", encoding: .utf8)
        let file = try IDXFile(path: Repo.data + "/t10k-labels-idx1-ubyte.gz")
        #expect(sums.contains("\(file.sha256)  t10k-labels-idx1-ubyte"))
        #expect(Array(mnist.test.labels.prefix(5)) == [7, 2, 1, 0, 4])
    }

    /// A data directory holding copies of the four files, one of them replaced by `bytes`.
    static func brokenDirectory(_ name: String, replacing file: String, with bytes: [UInt8], keepManifest: Bool = false) throws -> String {
        let dir = Repo.scratch("data-\(name)")
        for entry in try FileManager.default.contentsOfDirectory(atPath: Repo.data) where entry.hasSuffix(".gz") || (keepManifest && entry == "SHA256SUMS.raw") {
            try FileManager.default.copyItem(atPath: Repo.data + "/" + entry, toPath: dir + "/" + entry)
        }
        try? FileManager.default.removeItem(atPath: dir + "/" + file + ".gz")
        FileManager.default.createFile(atPath: dir + "/" + file, contents: Data(bytes))
        return dir
    }

    static func rawLabels() throws -> [UInt8] {
        var raw: [UInt8] = [0, 0, 8, 1, 0, 0, 0x27, 0x10]  // 10,000 labels
        raw += try IDXFile(path: Repo.data + "/t10k-labels-idx1-ubyte.gz").bytes
        return raw
    }

    static func expectError(_ directory: String, mentions fragments: [String]) {
        do {
            _ = try Dataset(directory: directory)
            Issue.record("loading \(directory) should have failed")
        } catch {
            for fragment in fragments { #expect(error.description.contains(fragment), "'\(error)' should mention '\(fragment)'") }
        }
    }

    @Test func rejectsBrokenFiles() throws {
        let labels = try Self.rawLabels()
        let gz = try #require(FileManager.default.contents(atPath: Repo.data + "/t10k-labels-idx1-ubyte.gz"))
        var wrongMagic = labels; wrongMagic[2] = 0x0D
        var outOfRange = labels; outOfRange[8 + 17] = 12
        let fewer = [0, 0, 8, 1, 0, 0, 0x27, 0x0F] + labels[8..<(8 + 9_999)]
        var corrupt = [UInt8](gz); for i in 40..<60 { corrupt[i] ^= 0x5A }

        let name = "t10k-labels-idx1-ubyte"
        Self.expectError(try Self.brokenDirectory("truncated", replacing: name, with: Array(labels.prefix(5000))), mentions: [name, "truncated"])
        Self.expectError(try Self.brokenDirectory("magic", replacing: name, with: wrongMagic), mentions: [name, "magic"])
        Self.expectError(try Self.brokenDirectory("range", replacing: name, with: outOfRange), mentions: [name, "label 12", "index 17"])
        Self.expectError(try Self.brokenDirectory("count", replacing: name, with: fewer), mentions: [name, "9999 labels", "10000 images"])
        Self.expectError(try Self.brokenDirectory("gz-truncated", replacing: name + ".gz", with: Array(gz.prefix(gz.count / 2))), mentions: [name, "truncated"])
        Self.expectError(try Self.brokenDirectory("gz-corrupt", replacing: name + ".gz", with: corrupt), mentions: [name, "corrupt"])
        let missing = try Self.brokenDirectory("missing", replacing: "unrelated", with: [])
        try FileManager.default.removeItem(atPath: missing + "/train-images-idx3-ubyte.gz")
        Self.expectError(missing, mentions: ["train-images-idx3-ubyte", "no such file"])
        Self.expectError("/nonexistent/mnist", mentions: ["/nonexistent/mnist", "no such"])
    }

    @Test func manifestCatchesSilentCorruption() throws {
        // Valid IDX, wrong content: only the SHA-256 manifest can tell.
        var labels = try Self.rawLabels()
        labels[100] = labels[100] == 3 ? 4 : 3
        let dir = try Self.brokenDirectory("manifest", replacing: "t10k-labels-idx1-ubyte", with: labels, keepManifest: true)
        Self.expectError(dir, mentions: ["t10k-labels-idx1-ubyte", "SHA-256"])
        // Without a manifest the same files load (any MNIST-shaped data set is accepted).
        try FileManager.default.removeItem(atPath: dir + "/SHA256SUMS.raw")
        #expect(try Dataset(directory: dir).verifiedByManifest == false)
    }

    @Test func epochPlanShardsEveryExampleOnce() {
        let plan = EpochPlan(exampleCount: 1_003, globalBatchSize: 100, seed: 5, epoch: 2)
        #expect(plan.stepCount == 11)
        #expect(Set(plan.order).count == 1_003)
        #expect(plan.order != EpochPlan(exampleCount: 1_003, globalBatchSize: 100, seed: 5, epoch: 3).order)
        #expect(plan.order == EpochPlan(exampleCount: 1_003, globalBatchSize: 100, seed: 5, epoch: 2).order)
        for ranks in [1, 2, 3, 7] {
            var seen: [Int32] = []
            for step in 0..<plan.stepCount {
                let slices = (0..<ranks).map { EpochPlan.slice(plan.batch(step), rank: $0, ranks: ranks) }
                #expect(slices.map(\.count).max()! - slices.map(\.count).min()! <= 1)
                seen += slices.flatMap { $0 }
            }
            #expect(seen == plan.order, "\(ranks) ranks: slices must cover each batch in order")
        }
    }
}
