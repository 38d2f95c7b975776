// swift-tools-version:5.9
import PackageDescription
import class Foundation.ProcessInfo

// MPI: Open MPI unless DPTRAIN_MPI names another (README, "Building against the site's MPI").
// `openmpi` and `mpich` are Debian's; any other value is taken as a pkg-config name
// (`mvapich2`, `impi`, or the `dptrain-mpi` that scripts/mpi-pkgconfig writes).
let mpiChoice = ProcessInfo.processInfo.environment["DPTRAIN_MPI"] ?? "openmpi"
let mpi: (pkgConfig: String, providers: [SystemPackageProvider]?) = switch mpiChoice {
case "openmpi": ("ompi-c", [.apt(["libopenmpi-dev"])])
case "mpich": ("mpich", [.apt(["libmpich-dev"])])
default: (mpiChoice, nil)
}

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
        .systemLibrary(name: "CMPI", pkgConfig: mpi.pkgConfig, providers: mpi.providers),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        // The only code that includes mpi.h; exposes plain C functions to Swift.
        .target(name: "MPIShim", dependencies: ["CMPI"]),
        // The only code that includes hdf5.h (its handles are macros over globals Swift cannot import).
        .target(name: "HDF5Shim", dependencies: ["CHDF5"]),

        // PNG and JPEG decoding in C: libjpeg reports errors by longjmp, which Swift cannot catch.
        .target(name: "ImageDecoders", dependencies: ["CPNG", "CJPEG"]),
        .target(name: "Datasets", dependencies: ["SystemZlib", "ImageDecoders", .product(name: "ZIPFoundation", package: "ZIPFoundation")]),
        // The conv kernels: C with intrinsics per instruction set, chosen at run time.
        .target(name: "CKernels"),
        // The model as a value: Keras's layers as a Sequential or Functional graph.
        .target(name: "Graph"),
        .target(name: "NN", dependencies: ["Graph", "CBLAS", "CKernels"]),
        // Keras 3's .keras archives and model.to_json() files: a ModelGraph and its weights in and out.
        .target(name: "KerasFiles", dependencies: ["Graph", "HDF5Shim", .product(name: "ZIPFoundation", package: "ZIPFoundation")]),
        .target(name: "Collectives", dependencies: ["MPIShim"]),
        // safetensors and model files: what NN's tests and Training both read and write.
        .target(name: "ModelFiles", dependencies: ["NN"]),
        // TensorBoard event files, Chrome traces and SVG plots.
        .target(name: "Reports", dependencies: ["ModelFiles"]),
        .target(name: "Training", dependencies: ["Datasets", "NN", "CKernels", "ModelFiles", "KerasFiles", "Collectives", "Reports"]),
        .executableTarget(name: "dptrain", dependencies: [
            "Training", "ModelFiles", "Reports",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Runs every MPI primitive on its ranks and prints what it got, for the tests.
        .executableTarget(name: "collectives-check", dependencies: ["Collectives"], path: "Tests/CollectivesCheck"),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "NNTests", dependencies: ["NN", "ModelFiles", "KerasFiles", "Training", "Datasets", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "KerasFilesTests", dependencies: ["KerasFiles", "Graph", "TestSupport", .product(name: "ZIPFoundation", package: "ZIPFoundation")], exclude: ["Fixtures"]),
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "TestSupport"]),
        .testTarget(name: "DPTrainTests", dependencies: ["Training", "ModelFiles", "KerasFiles", "Datasets", "Collectives", "TestSupport"]),
    ]
)
