import ModelFiles
import Foundation

/// One phase of one step on one rank. `start` is seconds since a reference all ranks share
/// closely enough (e.g. the end of the run's first collective on each rank); the trace shows
/// it as microseconds.
public struct TracePhase: Equatable, Sendable {
    public var name: String
    public var start: Double
    public var duration: Double
    public init(_ name: String, start: Double, duration: Double) { (self.name, self.start, self.duration) = (name, start, duration) }

    /// Phases that follow each other from `start`, given their durations (what a step's
    /// timings hold): each starts where the previous one ended.
    public static func consecutive(from start: Double, _ durations: [(name: String, seconds: Double)]) -> [TracePhase] {
        var t = start
        return durations.map { phase in
            defer { t += phase.seconds }
            return TracePhase(phase.name, start: t, duration: phase.seconds)
        }
    }

    /// [start0, duration0, start1, duration1, …]: one rank's slot in a buffer of doubles that
    /// an allreduce (sum over a zeroed ranks × 2·phases buffer) brings to rank 0.
    public static func pack(_ phases: [TracePhase]) -> [Double] { phases.flatMap { [$0.start, $0.duration] } }

    /// The inverse of `pack`, given the phase names in the same order.
    public static func unpack(_ values: ArraySlice<Double>, names: [String]) -> [TracePhase] {
        let base = values.startIndex
        return names.indices.compactMap { i in
            guard base + 2 * i + 1 < values.endIndex else { return nil }
            return TracePhase(names[i], start: values[base + 2 * i], duration: values[base + 2 * i + 1])
        }
    }
}

/// Which steps a trace keeps, so a long run's file stays small: the first `first` global steps
/// (start-up, cold caches), then every `every`-th, and no more than `limit` in all (with the
/// defaults: steps 1-20, 100, 200, … 48,000: 500 steps × 7 events, about 0.4 MB per rank).
/// Decided from the step number alone, so every rank gets the same answer without talking,
/// and ranks skip gathering phase times for steps that are not kept.
public struct TraceWindow: Equatable, Sendable {
    public var first: Int
    public var every: Int
    public var limit: Int
    public init(first: Int = 20, every: Int = 100, limit: Int = 500) {
        (self.first, self.every, self.limit) = (max(first, 0), max(every, 1), max(limit, 0))
    }

    /// Whether global step `step` (counted from 1) is kept.
    public func records(step: Int) -> Bool {
        guard step >= 1, step <= first || step % every == 0 else { return false }
        return min(step, first) + max(0, step / every - first / every) <= limit
    }
}

/// A Chrome trace (`{"traceEvents": […]}`, for Perfetto and chrome://tracing) of every rank's
/// step phases, one process track per rank ("rank N"), each phase a complete ("X") event nested
/// in a "step N" event. Rank 0 owns it and appends the phases every rank sent; `write()`
/// replaces the file atomically, so a killed run keeps the last written trace (call it at
/// epoch ends and when the run ends or stops). Memory and file size are bounded by the window.
/// A resumed run starts a new trace at the same path: it holds the steps since the resume.
public struct TraceWriter: Sendable {
    public let path: String
    public let ranks: Int
    public let window: TraceWindow
    private var events: [String] = []
    private var steps: [Int] = []
    private var hasBuckets = false

    public init(path: String, ranks: Int, window: TraceWindow = TraceWindow()) {
        (self.path, self.ranks, self.window) = (path, ranks, window)
    }

    /// Steps kept so far.
    public var keptSteps: [Int] { steps }

    /// Whether `step` will be kept if appended: the same answer on every rank.
    public func records(step: Int) -> Bool { window.records(step: step) }

    /// Adds one rank's phases of `step`; ignored outside the window.
    public mutating func append(rank: Int, step: Int, phases: [TracePhase]) {
        guard !phases.isEmpty, records(step: step) else { return }
        if steps.last != step { steps.append(step) }
        let begin = phases.map(\.start).min()!, end = phases.map { $0.start + $0.duration }.max()!
        events.append(Self.complete("step \(step)", category: "step", start: begin, duration: end - begin, rank: rank, step: step))
        for phase in phases {
            events.append(Self.complete(phase.name, category: "phase", start: phase.start, duration: phase.duration, rank: rank, step: step))
        }
    }

    /// Adds one rank's bucket sums of `step` (each from its start to its completion, most of
    /// them during the backward pass) on a second track of the rank, "buckets".
    public mutating func append(rank: Int, step: Int, buckets: [TracePhase]) {
        guard !buckets.isEmpty, records(step: step) else { return }
        hasBuckets = true
        for bucket in buckets {
            events.append(Self.complete(bucket.name, category: "bucket", start: bucket.start, duration: bucket.duration, rank: rank, step: step, track: 1))
        }
    }

    /// The whole trace as JSON text.
    public func json() -> String {
        var all: [String] = []
        for rank in 0..<ranks {
            all.append(#"{"name":"process_name","ph":"M","pid":\#(rank),"tid":0,"args":{"name":"rank \#(rank)"}}"#)
            all.append(#"{"name":"process_sort_index","ph":"M","pid":\#(rank),"tid":0,"args":{"sort_index":\#(rank)}}"#)
            all.append(#"{"name":"thread_name","ph":"M","pid":\#(rank),"tid":0,"args":{"name":"steps"}}"#)
            if hasBuckets { all.append(#"{"name":"thread_name","ph":"M","pid":\#(rank),"tid":1,"args":{"name":"buckets"}}"#) }
        }
        all += events
        return "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n" + all.joined(separator: ",\n") + "\n]}\n"
    }

    public func write() throws { try AtomicFile.write(Array(json().utf8), to: path) }

    static func complete(_ name: String, category: String, start: Double, duration: Double, rank: Int, step: Int, track: Int = 0) -> String {
        // JSON has no NaN: a missing time shows as 0 rather than breaking the file.
        func micro(_ s: Double) -> String { String(format: "%.3f", s.isFinite ? s * 1e6 : 0) }
        let ts = micro(start), dur = micro(max(duration, 0))
        return #"{"name":\#(Escape.json(name)),"cat":"\#(category)","ph":"X","ts":\#(ts),"dur":\#(dur),"pid":\#(rank),"tid":\#(track),"args":{"step":\#(step)}}"#
    }
}
