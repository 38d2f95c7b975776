import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes TensorBoard scalars to `events.out.tfevents.<unix secs>.<host>` in a directory.
///
/// Resuming: `resumingAt: S` (the checkpoint's global step) continues the directory's newest
/// event file instead of starting another. Every file there is first cut at its first torn
/// record or first event after step S (what a killed run wrote past its checkpoint), then a
/// SessionLog START at step S+1 is appended: TensorBoard drops events at or after a repeated
/// START's step, so even a reader of an uncut copy sees each step once. Scalars at or before S
/// are already in the file, and are dropped if written again.
///
/// Each `write` is one event, sent to the file with one write(2): a killed run loses at most
/// the event being written. A class, because it owns an open file.
public final class TensorBoardEventWriter {
    public let path: String
    private var fd: Int32
    private let keepAfter: Int

    /// `resumingAt: nil` starts a fresh run: event files already in the directory (from a run
    /// that never reached a checkpoint) are cut back to step 0.
    public init(directory: String, resumingAt step: Int? = nil, wallTime: Double = Date().timeIntervalSince1970) throws {
        let resume = step ?? 0
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw ReportError("\(directory): cannot create the directory (a file is in the way)")
        }
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw ReportError("\(directory): cannot create the directory (\(error.localizedDescription))")
        }
        let existing = try Self.eventFiles(in: directory)
        var needsHeader = true
        if let newest = existing.last {
            for file in existing { try Self.cut(file, after: resume) }
            path = newest
            needsHeader = (try FileIO.read(newest)).isEmpty
        } else {
            path = (directory as NSString).appendingPathComponent("events.out.tfevents.\(Int(wallTime)).\(FileIO.hostname())")
        }
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard fd >= 0 else { throw ReportError("\(path): cannot open (\(FileIO.reason()))") }
        keepAfter = step ?? -1
        var events: [Event] = []
        if needsHeader { events.append(Event(wallTime: wallTime, step: 0, fileVersion: "brain.Event:2")) }
        events.append(Event(wallTime: wallTime, step: resume + 1, sessionStatus: Event.sessionStart))
        try append(events)
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    /// Scalars of one step, as one event; values at or before the resume step are skipped.
    public func write(step: Int, _ scalars: [(tag: String, value: Double)], wallTime: Double = Date().timeIntervalSince1970) throws {
        guard step > keepAfter, !scalars.isEmpty else { return }
        try append([Event(wallTime: wallTime, step: step, scalars: scalars.map { Event.Scalar($0.tag, Float($0.value)) })])
    }

    /// Makes what was written durable (the data is already in the kernel after each write).
    public func close() throws {
        guard fd >= 0 else { return }
        defer { Glibc.close(fd); fd = -1 }
        guard fsync(fd) == 0 else { throw ReportError("\(path): cannot sync (\(FileIO.reason()))") }
    }

    private func append(_ events: [Event]) throws {
        guard fd >= 0 else { throw ReportError("\(path): written after close") }
        try FileIO.writeAll(fd, events.flatMap { EventRecords.frame($0.encoded()) }, path: path)
    }

    /// The directory's event files, oldest first (by the seconds in their names, then by name).
    static func eventFiles(in directory: String) throws -> [String] {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: directory) } catch {
            throw ReportError("\(directory): cannot list (\(error.localizedDescription))")
        }
        func seconds(_ name: String) -> Int { name.split(separator: ".").dropFirst(3).first.flatMap { Int($0) } ?? 0 }
        func isFile(_ path: String) -> Bool {
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
        }
        return names.filter { $0.contains("tfevents") && !$0.hasPrefix(".") }
            .sorted { (seconds($0), $0) < (seconds($1), $1) }
            .map { (directory as NSString).appendingPathComponent($0) }
            .filter(isFile)
    }

    /// Truncates `file` at its first torn record or first event after `step`.
    static func cut(_ file: String, after step: Int) throws {
        let bytes = try FileIO.read(file)
        let (records, validEnd) = EventRecords.scan(bytes)
        var end = validEnd
        for (index, record) in records.enumerated() {
            guard let event = try? Event(decoding: record.data) else { end = index == 0 ? 0 : records[index - 1].end; break }
            if event.step > step { end = index == 0 ? 0 : records[index - 1].end; break }
        }
        guard end < bytes.count else { return }
        guard truncate(file, off_t(end)) == 0 else { throw ReportError("\(file): cannot truncate (\(FileIO.reason()))") }
    }
}

extension TensorBoardEventWriter {
    /// Every event of an event file, for tests and tools; stops at a torn record.
    public static func read(_ file: String) throws -> [Event] {
        try EventRecords.scan(FileIO.read(file)).records.map {
            do { return try Event(decoding: $0.data) } catch { throw ReportError("\(file): an event that is not valid protobuf") }
        }
    }
}
