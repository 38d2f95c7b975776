import Foundation
import Testing
import TestSupport
import Reports

/// The event file format itself, read back by our own reader (the real TensorBoard reads it in
/// TensorBoardTests).
@Suite struct EventFileTests {
    @Test func crc32cMatchesTheStandardCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        // 32 zero bytes, from RFC 3720 (iSCSI) appendix B.4.
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        let crc: UInt32 = 0xE306_9283
        #expect(CRC32C.masked(Array("123456789".utf8)) == ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8)
    }

    @Test func eventsRoundTrip() throws {
        let event = Event(wallTime: 1_700_000_000.25, step: 1234, scalars: [.init("train/loss", 0.5), .init("lr", 0.01)])
        #expect(try Event(decoding: event.encoded()) == event)
        let header = Event(wallTime: 1.5, step: 0, fileVersion: "brain.Event:2")
        #expect(try Event(decoding: header.encoded()) == header)
        let start = Event(wallTime: 2, step: 7, sessionStatus: Event.sessionStart)
        #expect(try Event(decoding: start.encoded()) == start)
    }

    @Test func theFileStartsWithItsVersionAndEveryRecordChecks() throws {
        let directory = Repo.scratch("events")
        let writer = try TensorBoardEventWriter(directory: directory)
        try writer.write(step: 1, [("train/loss", 2.0), ("train/accuracy", 0.25)])
        try writer.write(step: 2, [("train/loss", 1.5)])
        try writer.close()
        let name = (writer.path as NSString).lastPathComponent
        #expect(name.hasPrefix("events.out.tfevents."))
        #expect(name.split(separator: ".").count >= 5 && Int(name.split(separator: ".")[3]) != nil)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: writer.path)))
        #expect(EventRecords.scan(bytes).validEnd == bytes.count)
        let events = try TensorBoardEventWriter.read(writer.path)
        #expect(events.first?.fileVersion == "brain.Event:2")
        #expect(events[1].sessionStatus == Event.sessionStart)
        #expect(events.dropFirst(2).map(\.step) == [1, 2])
        #expect(events[2].scalars == [.init("train/loss", 2), .init("train/accuracy", 0.25)])
    }

    /// A run killed at step 7 after a checkpoint at step 4, mid-record: the resumed writer keeps
    /// one file, cuts the torn record and steps 5-7, marks the restart, and skips a rewrite of 4.
    @Test func resumingCutsWhatCameAfterTheCheckpoint() throws {
        let directory = Repo.scratch("events-resume")
        let first = try TensorBoardEventWriter(directory: directory)
        for step in 1...7 { try first.write(step: step, [("loss", Double(step))]) }
        try first.close()
        let handle = try #require(FileHandle(forWritingAtPath: first.path))
        handle.seekToEndOfFile()
        handle.write(Data(EventRecords.frame(Event(wallTime: 0, step: 8).encoded()).prefix(10)))
        handle.closeFile()

        let resumed = try TensorBoardEventWriter(directory: directory, resumingAt: 4)
        #expect(resumed.path == first.path)
        try resumed.write(step: 4, [("loss", 99)])
        for step in 5...6 { try resumed.write(step: step, [("loss", Double(step) + 0.5)]) }
        try resumed.close()
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains("tfevents") }
        #expect(files.count == 1)
        let events = try TensorBoardEventWriter.read(resumed.path)
        #expect(events.filter { $0.sessionStatus == Event.sessionStart }.map(\.step) == [1, 5])
        let losses = events.flatMap { e in e.scalars.map { (e.step, $0.value) } }
        #expect(losses.map(\.0) == [1, 2, 3, 4, 5, 6])
        #expect(losses.map(\.1) == [1, 2, 3, 4, 5.5, 6.5])

        // A fresh start in the same directory (no checkpoint was reached) clears the curves.
        let fresh = try TensorBoardEventWriter(directory: directory)
        try fresh.write(step: 1, [("loss", 42)])
        try fresh.close()
        let again = try TensorBoardEventWriter.read(fresh.path)
        #expect(again.flatMap(\.scalars) == [.init("loss", 42)])
        #expect(again.first?.fileVersion == "brain.Event:2")
    }

    @Test func anUnwritableDirectoryIsNamed() throws {
        let file = Repo.scratch("events-bad") + "/plain-file"
        _ = FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
        #expect {
            _ = try TensorBoardEventWriter(directory: file)
        } throws: { error in "\(error)" == file + ": cannot create the directory (a file is in the way)" }
    }
}
