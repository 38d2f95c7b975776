/// What the trainer needs from its peers. Data parallelism is nothing more than these calls:
/// one fused gradient sum per step, a few scalars for metrics and agreement, a broadcast of the
/// initial state from rank 0.
public protocol Communicator: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    /// Ranks sharing this node (and its cores).
    var localSize: Int { get }

    /// In-place sum over all ranks: the step's collective, watched for stalls once
    /// `watchStalls` has been called.
    func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws
    /// In-place sum over all ranks, wrapping modulo 2^32: exact, and the same whatever order
    /// MPI adds in, whenever the true total fits in an Int32.
    func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Int32>) throws
    /// Starts an in-place sum over all ranks (watched like `allreduceSum`) and returns at once,
    /// so that a bucket's reduction runs while the backward pass computes the next bucket.
    /// Every rank starts the same sums in the same order; `progressSums` and `waitSums` drive
    /// them, from the thread that started them (MPI stays FUNNELED). Up to 256 in flight.
    func startSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws
    func startSum(_ buffer: UnsafeMutableBufferPointer<Int32>) throws
    /// Drives the sums in flight once, without waiting: how many of those started since the
    /// last `waitSums` have completed, in the order they were started.
    func progressSums() throws -> Int
    /// Drives the sums in flight until every one has completed.
    func waitSums() throws
    /// In-place elementwise reduction of a few doubles (metrics, flags, status).
    func allreduce(_ values: inout [Double], _ op: ReduceOp) throws
    /// Copies `buffer` from `root` to every rank.
    func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws
    /// Every rank's `bytes` (the same length on all ranks), in rank order, on every rank.
    func allgather(_ bytes: [UInt8]) throws -> [[UInt8]]
    /// From now on rank 0 watches every sum allreduce with `inspector`: `warn` gets its warning
    /// line, and past the shutdown time the allreduce throws (the caller then ends the job).
    /// `step` names the step a collective belongs to. Collective: every rank calls it.
    func watchStalls(_ inspector: StallInspector, step: @escaping () -> Int, warn: @escaping (String) -> Void) throws
    /// Ends the whole job at once. Used after training has started, when a collective
    /// would otherwise wait forever for the failed rank.
    func abort(code: Int32) -> Never
    func finalize()
}

public enum ReduceOp: Sendable {
    case sum, max, min
}

public struct CommunicatorError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension Communicator {
    public var isRoot: Bool { rank == 0 }

    /// Agrees on a start-up outcome: every rank learns whether any rank failed, so all of them
    /// exit together instead of some waiting in a collective for a rank that is gone.
    /// Returns the lowest failing rank, or nil when every rank is fine.
    public func firstFailingRank(localFailure: Bool) throws -> Int? {
        var value = [localFailure ? Double(rank) : Double(size)]
        try allreduce(&value, .min)
        let first = Int(value[0])
        return first < size ? first : nil
    }

    public func broadcast(_ values: inout [Float], root: Int = 0) throws {
        try values.withUnsafeMutableBytes { try broadcast($0, root: root) }
    }

    /// Every rank's host name, in rank order.
    public func hostNames() throws -> [String] {
        var name = [CChar](repeating: 0, count: 256)
        gethostname(&name, name.count - 1)
        let mine = name.map { UInt8(bitPattern: $0) }
        return try allgather(mine).map { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// Broadcasts a byte string whose length only the root knows.
    public func broadcast(bytes: [UInt8], root: Int = 0) throws -> [UInt8] {
        var count = [Double(bytes.count)]
        if rank != root { count[0] = 0 }
        try allreduce(&count, .sum)
        var result = rank == root ? bytes : [UInt8](repeating: 0, count: Int(count[0]))
        try result.withUnsafeMutableBytes { try broadcast($0, root: root) }
        return result
    }
}

/// A world of one: the laptop case and unit tests. Every collective is the identity.
public final class SingleProcessCommunicator: Communicator {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public var localSize: Int { 1 }
    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {}
    public func allreduceSum(_ buffer: UnsafeMutableBufferPointer<Int32>) throws {}
    private var started = 0
    public func startSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws { started += 1 }
    public func startSum(_ buffer: UnsafeMutableBufferPointer<Int32>) throws { started += 1 }
    public func progressSums() throws -> Int { started }
    public func waitSums() throws { started = 0 }
    public func allgather(_ bytes: [UInt8]) throws -> [[UInt8]] { [bytes] }
    public func watchStalls(_ inspector: StallInspector, step: @escaping () -> Int, warn: @escaping (String) -> Void) throws {}
    public func allreduce(_ values: inout [Double], _ op: ReduceOp) throws {}
    public func broadcast(_ buffer: UnsafeMutableRawBufferPointer, root: Int) throws {}
    public func abort(code: Int32) -> Never { exit(code) }
    public func finalize() {}
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
