import Foundation

/// Runs the built executables the way a user does, from the package root.
public enum Repo {
    public static let root: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    public static var data: String { root.appendingPathComponent("data/mnist").path }
    /// The test venv's Python (NumPy, safetensors, TensorBoard, Keras 3 on JAX), made by `scripts/setup --test`.
    public static var venvPython: String { root.appendingPathComponent(".venv-test/bin/python").path }

    /// The build folder of the executables under test: the running test bundle's own (Swift
    /// Testing has no .xctest bundle to ask, so go through /proc/self/exe), or the other MPI's
    /// build when `DPTRAIN_TEST_MPI` names one (`MPIFlavour.current`).
    public static let buildDirectory: URL = MPIFlavour.current.buildDirectory ?? testBuildDirectory

    /// Where `swift test` put the test bundle and this build's executables.
    public static let testBuildDirectory: URL = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var url = URL(fileURLWithPath: exe)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("dptrain").path) { return url }
        }
        fatalError("dptrain was not built next to the test bundle (\(exe))")
    }()

    public static var dptrain: String { MPIFlavour.current.dptrain }

    /// A fresh scratch directory.
    public static func scratch(_ name: String) -> String {
        let path = NSTemporaryDirectory() + "dptrain-test-\(name)-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// What the MPI under test needs here (root, oversubscribed ranks, shared cores).
    public static var mpiEnvironment: [String: String] { MPIFlavour.current.environment }
    /// The MPI's launcher: Open MPI's `mpirun`, or MPICH's `mpiexec.mpich` by its own name
    /// (the system's `mpirun` stays Open MPI's).
    public static var mpirun: String { MPIFlavour.current.launcher }
}

/// An MPI implementation the suite runs the executables under. The whole suite runs with the
/// build's own MPI (Open MPI by default); `DPTRAIN_TEST_MPI=mpich` runs the suites it is given
/// (scripts/test: the MPI ones) with the MPICH build in `.build-mpich` (scripts/test makes it
/// with `DPTRAIN_MPI=mpich`) under Hydra's `mpiexec`.
public struct MPIFlavour: Sendable {
    public let name: String
    public let launcher: String
    public let environment: [String: String]
    /// The variable the launcher gives each rank its world rank in.
    public let rankVariable: String
    /// nil: the test bundle's own build.
    public let buildDirectory: URL?

    public static let openMPI = MPIFlavour(
        name: "Open MPI", launcher: "mpirun",
        environment: ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                      "OMPI_MCA_mpi_yield_when_idle": "1", "OMPI_MCA_rmaps_base_oversubscribe": "1"],
        rankVariable: "OMPI_COMM_WORLD_RANK", buildDirectory: nil)
    /// Hydra runs as root and oversubscribes without being asked.
    public static let mpich = MPIFlavour(
        name: "MPICH", launcher: "mpiexec.mpich", environment: [:], rankVariable: "PMI_RANK",
        buildDirectory: Repo.root.appendingPathComponent(".build-mpich/release"))

    public static let current: MPIFlavour = {
        switch ProcessInfo.processInfo.environment["DPTRAIN_TEST_MPI"] ?? "openmpi" {
        case "openmpi": return .openMPI
        case "mpich": return .mpich
        case let other: fatalError("DPTRAIN_TEST_MPI=\(other): openmpi or mpich")
        }
    }()

    /// The MPICH build's executables: fails the test (never skips it) when scripts/test has not
    /// built them.
    public var dptrain: String {
        let path = (buildDirectory ?? Repo.testBuildDirectory).appendingPathComponent("dptrain").path
        precondition(FileManager.default.isExecutableFile(atPath: path),
                     "\(path) is missing: build it with `DPTRAIN_MPI=mpich swift build -c release --build-path .build-mpich` (scripts/test does)")
        return path
    }

    /// `launcher -np N dptrain ARGS`.
    public func command(_ arguments: [String], ranks: Int) -> [String] { [launcher, "-np", "\(ranks)", dptrain] + arguments }
}

public struct ProcessResult: CustomStringConvertible {
    public let status: Int32
    public let stdout: String
    public let stderr: String
    public let seconds: Double
    public let timedOut: Bool
    public var description: String { "status \(status)\(timedOut ? " (timed out)" : "") after \(String(format: "%.1f", seconds))s\nstdout:\n\(stdout)\nstderr:\n\(stderr)" }
    public var stderrLines: [Substring] { stderr.split(separator: "\n") }
}

/// A started process whose output goes to files (no pipe can fill up and block it). Spawned
/// with posix_spawn and a clean signal mask: test runner threads block most signals, and a
/// child would inherit that and never see the SIGUSR1/SIGTERM the tests send.
public final class RunningProcess {
    public let pid: pid_t
    let outPath: String, errPath: String
    let start = Date()
    private var exitStatus: Int32?

    public init(_ arguments: [String], environment: [String: String] = [:], directory: String = Repo.root.path) throws {
        let base = NSTemporaryDirectory() + "dptrain-proc-\(UUID().uuidString)"
        outPath = base + ".out"
        errPath = base + ".err"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t(), all = sigset_t()
        sigemptyset(&empty)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let env = ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { "\($0)=\($1)" }
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = env.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        // The children start where the tests run: the package root (a process-wide setting, but
        // every test asks for the same one).
        FileManager.default.changeCurrentDirectoryPath(directory)
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, envp)
        guard rc == 0 else { throw CocoaError(.executableLoad, userInfo: [NSLocalizedDescriptionKey: "cannot start \(arguments[0]): \(String(cString: strerror(rc)))"]) }
        self.pid = pid
    }

    public var stdout: String { (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "" }
    /// What the process has written to stderr so far.
    public var stderr: String { (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "" }

    public var isRunning: Bool {
        guard exitStatus == nil else { return false }
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return true }
        // Exit code, or 128 + signal like a shell.
        exitStatus = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return false
    }

    /// Waits up to `timeout` seconds; past it the process is killed and the result says so.
    public func wait(timeout: Double) -> ProcessResult {
        var timedOut = false
        while isRunning {
            if !timedOut && Date().timeIntervalSince(start) > timeout {
                timedOut = true
                kill(pid, SIGTERM)
                Thread.sleep(forTimeInterval: 2)
                if isRunning { kill(pid, SIGKILL) }
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        defer {
            try? FileManager.default.removeItem(atPath: outPath)
            try? FileManager.default.removeItem(atPath: errPath)
        }
        return ProcessResult(status: exitStatus ?? -1, stdout: stdout, stderr: err,
                             seconds: Date().timeIntervalSince(start), timedOut: timedOut)
    }

    /// Polls until `condition` holds or `timeout` passes; returns whether it held.
    public func waitUntil(timeout: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            if !isRunning { return condition() }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return false
    }
}

@discardableResult
public func run(_ arguments: [String], environment: [String: String] = [:], timeout: Double = 300) throws -> ProcessResult {
    try RunningProcess(arguments, environment: environment).wait(timeout: timeout)
}

/// `dptrain ARGS` alone, or under `mpirun -np N` when `ranks` is given.
@discardableResult
public func dptrain(_ arguments: [String], ranks: Int? = nil, timeout: Double = 300) throws -> ProcessResult {
    try RunningProcess(command(arguments, ranks: ranks), environment: Repo.mpiEnvironment).wait(timeout: timeout)
}

public func command(_ arguments: [String], ranks: Int?) -> [String] {
    guard let ranks else { return [Repo.dptrain] + arguments }
    return MPIFlavour.current.command(arguments, ranks: ranks)
}

/// PIDs of processes whose command line contains `needle` (to check nothing is left behind).
public func processes(matching needle: String) -> [Int32] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { Int32($0) }.filter { pid in
        guard pid != getpid(), let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
        let text = String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
        return text.contains(needle)
    }
}

/// The ranks of a job (not its launcher) whose command line contains `needle`.
public func rankProcesses(matching needle: String) -> [Int32] {
    processes(matching: needle).filter {
        let program = ((try? String(contentsOfFile: "/proc/\($0)/cmdline", encoding: .utf8)) ?? "").prefix { $0 != "\0" }
        return !program.hasSuffix("mpirun") && !program.contains("mpiexec")
    }
}

/// The MPI rank of a process started by the launcher (from its environment), if it has one.
public func mpiRank(of pid: Int32) -> Int? {
    guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return nil }
    let prefix = MPIFlavour.current.rankVariable + "="
    return data.split(separator: 0).lazy.map { String(decoding: $0, as: UTF8.self) }
        .first { $0.hasPrefix(prefix) }.flatMap { Int($0.dropFirst(prefix.count)) }
}

/// Writes an unsigned-byte IDX file (raw) with `dims` and `bytes`.
public func writeIDX(_ path: String, dims: [Int], bytes: [UInt8]) throws {
    var data: [UInt8] = [0, 0, 8, UInt8(dims.count)]
    for d in dims { data += [UInt8(d >> 24 & 0xFF), UInt8(d >> 16 & 0xFF), UInt8(d >> 8 & 0xFF), UInt8(d & 0xFF)] }
    try Data(data + bytes).write(to: URL(fileURLWithPath: path))
}

/// A learnable synthetic set of `size`×`size` colour images (idx4, N×H×W×3): class k is a bright
/// square in its own place and colour on faint noise, so a small CNN separates the classes.
public func syntheticColourSet(classes: Int, size: Int = 16, train: Int = 500, test: Int = 100) throws -> String {
    let dir = Repo.scratch("colour-\(classes)")
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        return z ^ (z >> 27)
    }
    for (prefix, count) in [("train", train), ("t10k", test)] {
        var images = [UInt8](), labels = [UInt8]()
        for i in 0..<count {
            let label = i % classes
            var image = (0..<(size * size * 3)).map { _ in UInt8(next() % 40) }
            let top = (label * 5) % (size - 5), left = (label * 3) % (size - 5)
            for y in top..<(top + 5) { for x in left..<(left + 5) { image[(y * size + x) * 3 + label % 3] = 250 } }
            images += image
            labels.append(UInt8(label))
        }
        try writeIDX("\(dir)/\(prefix)-images-idx4-ubyte", dims: [count, size, size, 3], bytes: images)
        try writeIDX("\(dir)/\(prefix)-labels-idx1-ubyte", dims: [count], bytes: labels)
    }
    return dir
}

/// The parsed summary.json of a run directory.
public func runSummary(_ runDir: String) throws -> [String: Any] {
    let data = try Data(contentsOf: URL(fileURLWithPath: runDir + "/summary.json"))
    return try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
}
