import Foundation

/// Decode once per node: a decoded set is written once to `<key>.dptrain-data` (key: the source
/// files' paths, sizes and modification times, the format and the decoding settings), under a
/// lock so that the ranks of a node decode it once, through a temporary file renamed into
/// place so that no reader sees half of it. Every rank then maps the file read-only: the page
/// cache holds one copy however many ranks read it.
enum DataCache {
    static let magic = Array("DPTDATA1".utf8)
    static let suffix = ".dptrain-data"

    /// What the cache file says about the set, ahead of its arrays.
    struct Header: Codable {
        struct Split: Codable { var count, imageOffset, labelOffset: Int }
        var source: String
        var format: DataFormat
        var fingerprint: String
        var classes: Int
        var classNames: [String]?
        var verifiedByManifest: Bool
        var warnings: [String]
        var height, width, channels: Int
        var pixelType: PixelType
        var train, test: Split
        var totalLength: Int
    }

    struct Loaded {
        var header: Header
        var train, test: LabeledImages
        var file: String?
    }

    static func load(source: any DataSource, format: DataFormat, path: String, loading: DataLoading) throws(DataError) -> Loaded {
        let key = try cacheKey(source: source, format: format, loading: loading)
        guard let directory = try cacheDirectory(path: path, loading: loading) else {
            return try inMemory(decodeAndCheck(source, format: format, path: path, loading: loading), warning: nil)
        }
        let lockPath = joinPath(directory, key + ".lock"), finalPath = joinPath(directory, key + suffix)
        let lock = open(lockPath, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard lock >= 0 else {
            return try inMemory(decodeAndCheck(source, format: format, path: path, loading: loading),
                                warning: "\(lockPath): cannot be created (\(String(cString: strerror(errno)))); the data is decoded into this process's memory")
        }
        defer { close(lock) }  // also releases the lock
        while flock(lock, LOCK_EX) != 0 && errno == EINTR {}
        if let mapped = map(finalPath) { return mapped }
        try? FileManager.default.removeItem(atPath: finalPath)  // unreadable: rebuilt below
        let decoded: (DecodedSet, Header)
        do { decoded = try decodeAndCheck(source, format: format, path: path, loading: loading) } catch {
            unlink(lockPath)
            rmdir(directory)  // only if empty: nothing is left behind by a bad set
            throw error
        }
        let temporary = joinPath(directory, ".\(key).\(getpid()).tmp")
        do {
            try write(decoded, to: temporary)
            guard rename(temporary, finalPath) == 0 else { throw DataError("\(finalPath): \(String(cString: strerror(errno)))") }
        } catch {
            unlink(temporary)
            return inMemory(decoded, warning: "\(finalPath): the decoded set could not be cached (\(error)); it is held in this process's memory")
        }
        guard let mapped = map(finalPath) else { throw DataError("\(finalPath): the cache file just written cannot be read back") }
        return mapped
    }

    /// Names the exact source and settings without reading the data: a changed file changes its
    /// size or modification time, and so the key.
    static func cacheKey(source: any DataSource, format: DataFormat, loading: DataLoading) throws(DataError) -> String {
        var settings = loading
        settings.cacheDirectory = nil
        settings.format = format
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        var text = "dptrain-cache-v1\n" + String(decoding: (try? encoder.encode(settings)) ?? Data(), as: UTF8.self) + "\n"
        for file in source.files {
            var info = stat()
            guard stat(file, &info) == 0 else { throw DataError("\(file): cannot be read (\(String(cString: strerror(errno))))") }
            let absolute = URL(fileURLWithPath: file).standardizedFileURL.path
            text += "\(absolute) \(info.st_size) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)\n"
        }
        return String(SHA256.hex(Array(text.utf8)).prefix(32))
    }

    /// `--cache-dir`, else `.dptrain-cache` beside the data, else the user's cache directory;
    /// nil: no cache ("none", or nowhere writable).
    static func cacheDirectory(path: String, loading: DataLoading) throws(DataError) -> String? {
        func usable(_ directory: String) -> Bool {
            (try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)) != nil
                && access(directory, W_OK) == 0
        }
        if let explicit = loading.cacheDirectory {
            if explicit == "none" { return nil }
            guard usable(explicit) else { throw DataError("--cache-dir \(explicit): cannot be created or written") }
            return explicit
        }
        var isDirectory: ObjCBool = false
        _ = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        let beside = joinPath(isDirectory.boolValue ? path : (path as NSString).deletingLastPathComponent, ".dptrain-cache")
        if usable(beside) { return beside }
        let environment = ProcessInfo.processInfo.environment
        let userCache = environment["XDG_CACHE_HOME"].map { joinPath($0, "dptrain") }
            ?? joinPath(environment["HOME"] ?? NSTemporaryDirectory(), ".cache/dptrain")
        return usable(userCache) ? userCache : nil
    }

    static func decodeAndCheck(_ source: any DataSource, format: DataFormat, path: String, loading: DataLoading) throws(DataError) -> (DecodedSet, Header) {
        let set = try source.decode()
        let (classes, warnings) = try Dataset.check(set, path: path, classes: loading.classes)
        let t = set.train
        let trainImages = 0, trainLabels = align(t.pixels.count)
        let testImages = align(trainLabels + 4 * t.count), testLabels = align(testImages + set.test.pixels.count)
        let header = Header(source: path, format: format, fingerprint: Dataset.fingerprint(set), classes: classes, classNames: set.classNames,
                            verifiedByManifest: set.verifiedByManifest, warnings: warnings, height: t.height, width: t.width, channels: t.channels,
                            pixelType: t.pixelType, train: .init(count: t.count, imageOffset: trainImages, labelOffset: trainLabels),
                            test: .init(count: set.test.count, imageOffset: testImages, labelOffset: testLabels),
                            totalLength: testLabels + 4 * set.test.count)
        return (set, header)
    }

    static func align(_ n: Int) -> Int { (n + 63) / 64 * 64 }

    /// Calls `body` with each array and its offset (relative to the data start), in file order;
    /// stops at the first error it returns.
    static func forEachPiece(_ set: DecodedSet, _ header: Header, _ body: (Int, UnsafeRawBufferPointer) -> DataError?) -> DataError? {
        set.train.pixels.withUnsafeBytes { body(header.train.imageOffset, $0) }
            ?? set.train.labels.withUnsafeBytes { body(header.train.labelOffset, $0) }
            ?? set.test.pixels.withUnsafeBytes { body(header.test.imageOffset, $0) }
            ?? set.test.labels.withUnsafeBytes { body(header.test.labelOffset, $0) }
    }

    /// File layout: magic, UInt64 header length, JSON header, padding to 64, then the arrays.
    static func prefix(_ header: Header) -> [UInt8] {
        let json = [UInt8]((try? JSONEncoder().encode(header)) ?? Data())
        var bytes = magic
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { bytes += $0 }
        bytes += json
        bytes += [UInt8](repeating: 0, count: align(bytes.count) - bytes.count)
        return bytes
    }

    static func write(_ decoded: (DecodedSet, Header), to path: String) throws(DataError) {
        let (set, header) = decoded
        let fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DataError("\(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let start = prefix(header)
        func put(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> DataError? {
            var done = 0
            while done < bytes.count {
                let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return DataError("\(path): \(String(cString: strerror(errno)))") }
                done += n
            }
            return nil
        }
        if let error = start.withUnsafeBytes({ put($0, at: 0) }) ?? forEachPiece(set, header, { put($1, at: start.count + $0) }) { throw error }
        guard ftruncate(fd, off_t(start.count + header.totalLength)) == 0, fsync(fd) == 0 else {
            throw DataError("\(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Maps a cache file read-only; nil when it is missing or not a whole cache file.
    static func map(_ path: String) -> Loaded? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_size >= 16 else { return nil }
        let size = Int(info.st_size)
        guard let address = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), address != MAP_FAILED else { return nil }
        let storage = PixelStorage(base: UnsafeRawPointer(address), length: size) { munmap(address, size) }
        let bytes = UnsafeRawBufferPointer(start: address, count: size)
        guard Array(bytes[0..<8]) == magic else { return nil }
        let jsonLength = Int(bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self).littleEndian)
        guard jsonLength < size - 16,
              let header = try? JSONDecoder().decode(Header.self, from: Data(bytes[16..<(16 + jsonLength)])) else { return nil }
        let dataStart = align(16 + jsonLength)
        guard dataStart + header.totalLength == size else { return nil }
        return loaded(header, storage: storage, dataStart: dataStart, file: path)
    }

    static func loaded(_ header: Header, storage: PixelStorage, dataStart: Int, file: String?) -> Loaded {
        func split(_ s: Header.Split) -> LabeledImages {
            LabeledImages(storage: storage, pixelType: header.pixelType, imageOffset: dataStart + s.imageOffset,
                          labelOffset: dataStart + s.labelOffset, count: s.count, height: header.height, width: header.width, channels: header.channels)
        }
        return Loaded(header: header, train: split(header.train), test: split(header.test), file: file)
    }

    /// The same layout in this process's memory, when there is no cache.
    static func inMemory(_ decoded: (DecodedSet, Header), warning: String?) -> Loaded {
        let (set, header0) = decoded
        var header = header0
        if let warning { header.warnings.append(warning) }
        let memory = UnsafeMutableRawPointer.allocate(byteCount: max(header.totalLength, 1), alignment: 64)
        _ = forEachPiece(set, header) { offset, bytes in
            if let base = bytes.baseAddress { (memory + offset).copyMemory(from: base, byteCount: bytes.count) }
            return nil
        }
        let storage = PixelStorage(base: UnsafeRawPointer(memory), length: header.totalLength) { memory.deallocate() }
        return loaded(header, storage: storage, dataStart: 0, file: nil)
    }
}
