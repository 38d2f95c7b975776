// swift-tools-version:5.9
import PackageDescription

let package = Package(
    name: "DPTrain",
    products: [
        .executable(name: "dptrain", targets: ["dptrain"]),
        .library(name: "Training", targets: ["Training"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.19"),
    ],
    targets: [
        // System libraries, found through pkg-config.
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "SystemZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng", providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CJPEG", pkgConfig: "libjpeg", providers: [.apt(["libjpeg-dev"])]),
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        // The only code that includes mpi.h; exposes plain C functions to Swift.
        .target(name: "MPIShim", dependencies: ["CMPI"]),

        // PNG and JPEG decoding in C: libjpeg reports errors by longjmp, which Swift cannot catch.
        .target(name: "ImageDecoders", dependencies: ["CPNG", "CJPEG"]),
        .target(name: "Datasets", dependencies: ["SystemZlib", "ImageDecoders", .product(name: "ZIPFoundation", package: "ZIPFoundation")]),
        // The conv kernels: C with intrinsics per instruction set, chosen at run time.
        .target(name: "CKernels"),
        .target(name: "NN", dependencies: ["CBLAS", "CKernels"]),
        .target(name: "Collectives", dependencies: ["MPIShim"]),
        // safetensors and model files: what NN's tests and Training both read and write.
        .target(name: "ModelFiles", dependencies: ["NN"]),
        // TensorBoard event files, Chrome traces and SVG plots.
        .target(name: "Reports", dependencies: ["ModelFiles"]),
        .target(name: "Training", dependencies: ["Datasets", "NN", "CKernels", "ModelFiles", "Collectives", "Reports"]),
        .executableTarget(name: "dptrain", dependencies: [
            "Training", "ModelFiles", "Reports",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Runs every MPI primitive on its ranks and prints what it got, for the tests.
        .executableTarget(name: "collectives-check", dependencies: ["Collectives"], path: "Tests/CollectivesCheck"),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "NNTests", dependencies: ["NN", "ModelFiles", "Training", "Datasets"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "TestSupport"]),
        .testTarget(name: "DPTrainTests", dependencies: ["Training", "ModelFiles", "Datasets", "Collectives", "TestSupport"]),
    ]
)
