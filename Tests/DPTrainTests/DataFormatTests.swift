import Datasets
import Foundation
import ModelFiles
import Testing
import TestSupport

/// Data as users already keep it: NumPy arrays, folders of images, CIFAR batches, written here
/// by NumPy and Pillow themselves (tests/python/make_data_sets.py), read by every command.
@Suite(.serialized)
struct DataFormatTests {
    /// Made once for the suite: about 6 s, mostly compressing MNIST.
    static let sets: String = {
        let dir = Repo.scratch("data-sets")
        let python = Repo.root.appendingPathComponent(".venv-test/bin/python").path
        let made = try? run([python, Repo.root.path + "/tests/python/make_data_sets.py", dir, Repo.data], timeout: 120)
        precondition(made?.status == 0, "run scripts/setup --test to create .venv-test; make_data_sets.py: \(made.map { "\($0)" } ?? "did not start")")
        return dir
    }()

    static func sha256(inSummaryOf arguments: [String]) throws -> String? {
        let result = try dptrain(["summary"] + arguments)
        #expect(result.status == 0, "\(result)")
        return result.stdout.components(separatedBy: "sha256 ").last?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The same images in the same order train to the same bits whichever file holds them, and
    /// are the same data to a checkpoint: a run on the IDX copy resumes on the .npz copy.
    @Test func npzMNISTTrainsToTheSameBitsAsIDXAndResumesItsCheckpoint() throws {
        let idxRun = Repo.scratch("idx-run"), npzRun = Repo.scratch("npz-run")
        let common = ["--max-steps", "3", "--batch-size", "64"]
        let fromIDX = try dptrain(["train", "--run-dir", idxRun] + common)
        let fromNPZ = try dptrain(["train", "--data", Self.sets + "/mnist.npz", "--run-dir", npzRun] + common)
        #expect(fromIDX.status == 0 && fromNPZ.status == 0, "\(fromIDX)\n\(fromNPZ)")
        let a = try SafeTensors(path: idxRun + "/model.safetensors"), b = try SafeTensors(path: npzRun + "/model.safetensors")
        #expect(!a.tensors.isEmpty && a.tensors.count == b.tensors.count)
        for (name, tensor) in a.tensors { #expect(tensor.floats == b[name]?.floats, "\(name) differs") }
        let (idxData, npzData) = (try runSummary(idxRun)["data_sha256"] as? String, try runSummary(npzRun)["data_sha256"] as? String)
        #expect(idxData != nil && idxData == npzData)

        // Deflated, big-endian int64 labels, Fortran-order images, one-hot labels: the same data.
        let idxSum = try Self.sha256(inSummaryOf: [])
        let otherSum = try Self.sha256(inSummaryOf: ["--data", Self.sets + "/mnist-other.npz"])
        #expect(idxSum?.count == 64 && idxSum == otherSum)

        let resumed = try dptrain(["train", "--data", Self.sets + "/mnist-other.npz", "--run-dir", idxRun, "--resume", "auto",
                                   "--max-steps", "4", "--batch-size", "64"])
        #expect(resumed.status == 0 && resumed.stdout.contains("resumed from ckpt-000000003"), "\(resumed)")
    }

    @Test func imageFoldersTrainAndPredictPNGFiles() throws {
        let folders = Self.sets + "/folders"
        let summary = try dptrain(["summary", "--data", folders])
        #expect(summary.status == 0 && summary.stdout.contains("16x16x3 images in 3 classes: blue, green, red"), "\(summary)")
        let runDir = Repo.scratch("folders-run")
        let trained = try dptrain(["train", "--data", folders, "--epochs", "3", "--batch-size", "20", "--lr", "0.05", "--run-dir", runDir])
        #expect(trained.status == 0, "\(trained)")
        let accuracy = try runSummary(runDir)["test_accuracy"] as? Double
        #expect((accuracy ?? 0) >= 0.9)
        // 24x24 files, resized to the model's 16x16 input; classes in folder order.
        let pngs = ["blue", "green", "red"].map { Self.sets + "/pngs/\($0).png" }
        let predicted = try dptrain(["predict", "--model", runDir + "/model.safetensors", "--images"] + pngs)
        #expect(predicted.status == 0 && predicted.stdout.split(separator: "\n") == ["0", "1", "2"], "\(predicted)")
        // Grayscale, as Keras's color_mode, gives one channel.
        let gray = try dptrain(["summary", "--data", folders, "--color-mode", "grayscale", "--image-size", "20,20"])
        #expect(gray.status == 0 && gray.stdout.contains("20x20x1 images in 3 classes"), "\(gray)")
    }

    @Test func cifarBatchesTrainAndShowTheirClassNames() throws {
        let cifar = Self.sets + "/cifar"
        let summary = try dptrain(["summary", "--data", cifar])
        #expect(summary.status == 0, "\(summary)")
        #expect(summary.stdout.contains("(cifar10): 32x32x3 images in 10 classes: airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck"), "\(summary)")
        #expect(summary.stdout.split(separator: "\n").contains { $0.hasPrefix("│ conv2d (Conv2D)") && $0.contains("(None, 28, 28, 32)") && $0.hasSuffix(" 2,432 │") })
        let trained = try dptrain(["train", "--data", cifar, "--max-steps", "2", "--batch-size", "50", "--run-dir", Repo.scratch("cifar-run")])
        #expect(trained.status == 0, "\(trained)")
        let hundred = try dptrain(["summary", "--data", Self.sets + "/cifar100"])
        #expect(hundred.status == 0 && hundred.stdout.contains("(cifar100): 32x32x3 images in 100 classes: class00, class01"), "\(hundred)")
        // .npy files: float32 images used as they are, uint16 N×1 labels.
        let npy = try dptrain(["summary", "--data", Self.sets + "/npy"])
        #expect(npy.status == 0 && npy.stdout.contains("(npy): 28x28x1 images in 10 classes"), "\(npy)")
        // CHW planes become HWC: record 0's first pixel is (R[0], G[0], B[0]).
        let planes: [UInt8] = (0..<3072).map { (i: Int) -> UInt8 in UInt8(i / 1024 * 100 + i % 1024 % 3) }
        let bytes: [UInt8] = [7] + planes
        let batch = try readCIFARBatch(bytes: bytes, kind: .cifar10, name: "x")
        #expect(batch.labels == [7] && Array(batch.pixels.prefix(6)) == [0, 100, 200, 1, 101, 201], "\(Array(batch.pixels.prefix(6)))")
    }

    /// libpng gives Pillow's pixels; resizing follows tf.image.resize's half-pixel bilinear.
    @Test func decodersAndResizeMatchTheirReferences() throws {
        let png = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.sets + "/reference.png")))
        let reference = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.sets + "/reference.rgb")))
        let decoded = try decodeImage(bytes: png, channels: 3, name: "reference.png")
        #expect(decoded.height == 5 && decoded.width == 7 && decoded.pixels == reference)
        #expect(try decodeImage(bytes: png, channels: 1, name: "reference.png").pixels.count == 35)
        let row = DecodedImage(pixels: [0, 255], height: 1, width: 2, channels: 1)
        #expect(resizeBilinear(row, height: 1, width: 4) == [0, 63.75, 191.25, 255].map { Float($0) * (1 / 255) })
    }

    /// Each broken input: one line naming the file (and entry or image) and what is wrong,
    /// exit 1, and no cache file left.
    @Test func badInputIsOneLineNamingTheFile() throws {
        let bad = Self.sets + "/bad"
        let cases: [(String, [String], [String])] = [
            ("truncated.npz", [], ["truncated.npz", "zip"]),
            ("crc.npz", [], ["crc.npz: x_train.npy", "CRC-32"]),
            ("magic.npz", [], ["magic.npz: x_train.npy", "bad magic"]),
            ("shape-lie.npz", [], ["shape-lie.npz: x_train.npy", "truncated", "[30, 28, 28]"]),
            ("complex.npz", [], ["complex.npz: x_train.npy", "dtype '<c8'"]),
            ("counts.npz", [], ["counts.npz: y_train.npy", "19 labels", "20 images"]),
            ("stray-label.npz", ["--classes", "10"], ["stray-label.npz: y_train.npy", "label 11 at index 3", "--classes 10"]),
            ("empty-class", [], ["empty-class/train/b", "no PNG or JPEG"]),
            ("undecodable", [], ["undecodable/train/a/1.png", "does not decode"]),
            ("sizes", [], ["sizes/test/b/2.png", "9x8", "--image-size"]),
            ("cifar-length", [], ["cifar-length/data_batch_1.bin", "wrong length", "3073-byte"]),
        ]
        for (name, flags, fragments) in cases {
            let result = try dptrain(["summary", "--data", bad + "/" + name] + flags)
            #expect(result.status == 1 && result.stderrLines.count == 1, "\(name): \(result)")
            for fragment in fragments { #expect(result.stderr.contains(fragment), "\(name): '\(result.stderr)' should mention '\(fragment)'") }
        }
        let left = FileManager.default.enumerator(atPath: bad)?.compactMap { $0 as? String }.filter { $0.contains(".dptrain") || $0.hasSuffix(".tmp") }
        #expect(left == [], "cache files left by bad input: \(left ?? [])")

        // A stray label 11 among 0-9 makes an empty class 10: one warning naming it.
        let stray = try dptrain(["summary", "--data", bad + "/stray-label.npz"])
        #expect(stray.status == 0 && stray.stderrLines.count == 1 && stray.stderr.contains("warning") && stray.stderr.contains("class 10 of 0-11"), "\(stray)")
        #expect(stray.stdout.contains("in 12 classes"))

        // Under mpirun every rank says it and leaves with 1; no run directory is written.
        let runDir = Repo.scratch("bad-ranks") + "/run"
        let ranks = try dptrain(["train", "--data", bad + "/crc.npz", "--run-dir", runDir], ranks: 2, timeout: 60)
        #expect(ranks.status == 1, "\(ranks)")
        for rank in 0..<2 { #expect(ranks.stderr.contains("rank \(rank): error: \(bad)/crc.npz: x_train.npy"), "\(ranks)") }
        #expect(!FileManager.default.fileExists(atPath: runDir))
    }

    /// The ranks of a node decode once and map one file; a changed source decodes again.
    @Test func ranksShareOneCacheFileKeyedByTheSource() throws {
        let data = Repo.scratch("cache-source"), cache = Repo.scratch("cache-dir")
        for file in ["data_batch_1.bin", "test_batch.bin", "batches.meta.txt"] {
            try FileManager.default.copyItem(atPath: Self.sets + "/cifar/" + file, toPath: data + "/" + file)
        }
        let trained = try dptrain(["train", "--data", data, "--cache-dir", cache, "--max-steps", "1", "--batch-size", "30",
                                   "--run-dir", Repo.scratch("cache-run")], ranks: 3, timeout: 120)
        #expect(trained.status == 0, "\(trained)")
        let files = try FileManager.default.contentsOfDirectory(atPath: cache)
        #expect(files.filter { $0.hasSuffix(".dptrain-data") }.count == 1 && !files.contains { $0.hasSuffix(".tmp") }, "\(files)")

        var loading = DataLoading()
        loading.cacheDirectory = cache
        let first = try Dataset(path: data, loading: loading)
        #expect(first.cacheFile.map { files.contains(($0 as NSString).lastPathComponent) } == true)
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -60)], ofItemAtPath: data + "/test_batch.bin")
        let changed = try Dataset(path: data, loading: loading)
        #expect(changed.cacheFile != first.cacheFile && changed.fingerprint == first.fingerprint)
        #expect(first.train.count == 300 && first.test.count == 50 && first.classNames?.first == "airplane")
    }
}
