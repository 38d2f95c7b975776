import Foundation

/// Runs the built executables the way a user does, from the package root.
public enum Repo {
    public static let root: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    public static var data: String { root.appendingPathComponent("data/mnist").path }

    /// The build folder of the running test bundle, where `swift test` also put the executables
    /// (Swift Testing has no .xctest bundle to ask, so go through /proc/self/exe).
    public static let buildDirectory: URL = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var url = URL(fileURLWithPath: exe)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("dptrain").path) { return url }
        }
        fatalError("dptrain was not built next to the test bundle (\(exe))")
    }()

    public static var dptrain: String { buildDirectory.appendingPathComponent("dptrain").path }

    /// A fresh scratch directory.
    public static func scratch(_ name: String) -> String {
        let path = NSTemporaryDirectory() + "dptrain-test-\(name)-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// What OpenMPI needs here: root, oversubscribed ranks, and shared cores.
    public static let mpiEnvironment = [
        "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
        "OMPI_MCA_mpi_yield_when_idle": "1", "OMPI_MCA_rmaps_base_oversubscribe": "1",
    ]
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

/// A started process whose output goes to files (no pipe can fill up and block it).
public final class RunningProcess {
    public let process = Process()
    let outPath: String, errPath: String
    let start = Date()

    public init(_ arguments: [String], environment: [String: String] = [:], directory: String = Repo.root.path) throws {
        let base = NSTemporaryDirectory() + "dptrain-proc-\(UUID().uuidString)"
        outPath = base + ".out"
        errPath = base + ".err"
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: arguments[0].contains("/") ? arguments[0] : "/usr/bin/env")
        process.arguments = arguments[0].contains("/") ? Array(arguments.dropFirst()) : arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        try process.run()
    }

    public var stdout: String { (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "" }

    /// Waits up to `timeout` seconds; past it the process is killed and the result says so.
    public func wait(timeout: Double) -> ProcessResult {
        var timedOut = false
        while process.isRunning {
            if Date().timeIntervalSince(start) > timeout {
                timedOut = true
                process.terminate()
                Thread.sleep(forTimeInterval: 2)
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        process.waitUntilExit()
        let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        defer {
            try? FileManager.default.removeItem(atPath: outPath)
            try? FileManager.default.removeItem(atPath: errPath)
        }
        return ProcessResult(status: process.terminationStatus, stdout: stdout, stderr: err,
                             seconds: Date().timeIntervalSince(start), timedOut: timedOut)
    }

    /// Polls until `condition` holds or `timeout` passes; returns whether it held.
    public func waitUntil(timeout: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            if !process.isRunning { return condition() }
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
    return ["mpirun", "-np", "\(ranks)", Repo.dptrain] + arguments
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
