import ArgumentParser
import Datasets
import Foundation

extension DataFormat: ExpressibleByArgument {}
extension ColorMode: ExpressibleByArgument {}

/// `--data` and how to read it, shared by every command that reads a data set.
struct DataOptions: ParsableArguments {
    @Option(name: [.customLong("data"), .customLong("data-dir")],
            help: "A data set: a directory of IDX files (MNIST names, raw or .gz), x_train.npy…, CIFAR-10/100 batches or one folder of PNG/JPEG images per class (train/ and test/, or one folder), or an .npz file (default: the embedded MNIST).")
    var path: String?
    @Option(help: "The format, when the path could be several (default: chosen from what it holds).")
    var dataFormat: DataFormat?
    @Option(help: "Image folders: grayscale, rgb or rgba, as Keras's color_mode (default rgb).")
    var colorMode: ColorMode?
    @Option(help: "Image folders: resize images of another size to H,W (bilinear, as Keras); without it all must have one size.")
    var imageSize: ListArgument<Int>?
    @Option(help: "The class count; labels outside 0…K-1 are refused (default: the format's, else the largest training label + 1).")
    var classes: Int?
    @Option(help: "One image folder without train/ and test/: the fraction held out as the test set (default 0.2).")
    var testSplit: Double?
    @Option(help: "Where the decoded set is cached for every rank of a node to map (default: .dptrain-cache beside the data); 'none' decodes into each process's memory.")
    var cacheDir: String?

    func validate() throws {
        if let imageSize, imageSize.values.count != 2 || imageSize.values.contains(where: { $0 < 1 }) {
            throw ValidationError("--image-size: expected H,W (two positive sizes), got \(imageSize)")
        }
        if let classes, classes < 2 { throw ValidationError("--classes: must be at least 2, got \(classes)") }
        if let testSplit, !(testSplit > 0 && testSplit < 1) { throw ValidationError("--test-split: must be in (0, 1), got \(testSplit)") }
    }

    var loading: DataLoading {
        var loading = DataLoading()
        loading.format = dataFormat
        loading.colorMode = colorMode
        loading.imageSize = imageSize?.values
        loading.classes = classes
        loading.testSplit = testSplit
        loading.cacheDirectory = cacheDir
        return loading
    }

    /// The data set; its warnings go to stderr.
    func load() throws -> Dataset {
        let data = try Dataset(path: path, loading: loading)
        for warning in data.warnings { FileHandle.standardError.write(Data("dptrain: warning: \(warning)\n".utf8)) }
        return data
    }
}

extension Dataset {
    /// "data: PATH (cifar10): 32x32x3 images in 10 classes: airplane, …".
    var descriptionLine: String {
        "data: \(directory) (\(format.rawValue)): \(shape)" + (classNames.map { ": " + $0.joined(separator: ", ") } ?? "") + "; sha256 \(fingerprint)"
    }
}
