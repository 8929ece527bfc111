#if canImport(Glibc)
import Glibc
#endif

/// Why a cgroup could not be set up or used. The message names the file and the error.
public struct CgroupError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The few file operations cgroups need; every write is checked.
enum CgroupFS {
    static func write(_ path: String, _ value: String) throws(CgroupError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure("open", path, errno) }
        defer { close(fd) }
        var bytes = Array(value.utf8)
        let written = bytes.withUnsafeMutableBytes { buffer in
            var result: Int
            repeat { result = Glibc.write(fd, buffer.baseAddress, buffer.count) } while result < 0 && errno == EINTR
            return result
        }
        guard written == bytes.count else { throw failure("write \"\(value)\" to", path, written < 0 ? errno : EIO) }
    }

    static func read(_ path: String) -> String? {
        ProcFS.read(path).map { String(decoding: $0, as: UTF8.self) }
    }

    /// A number file (`cpuacct.usage`, `pids.max`'s peer `pids.current`, `memory.peak`...).
    static func readNumber(_ path: String) -> UInt64? {
        if let small = readSmall(path, parseNumber) { return small }
        guard let text = read(path) else { return nil }
        return UInt64(text.trimmed)
    }

    /// The value of `key` in a `key value` file (`memory.oom_control`), as
    /// `readKeyed(path)[key]`.
    static func readValue(_ path: String, key: String) -> UInt64? {
        if let small = readSmall(path, { parseValue($0, key: key) }) { return small }
        return readKeyed(path)[key]
    }

    /// `parse` applied to a file of under ``smallFile`` bytes, read onto the stack; nil
    /// when it is longer or cannot be read (then the caller reads it the long way).
    private static func readSmall<T>(_ path: String, _ parse: (UnsafeRawBufferPointer) -> T?) -> T?? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return withUnsafeTemporaryAllocation(byteCount: smallFile, alignment: 1) { buffer -> T?? in
            var count = 0
            while count < buffer.count {
                let got = Glibc.read(fd, buffer.baseAddress! + count, buffer.count - count)
                if got < 0 && errno == EINTR { continue }
                guard got >= 0 else { return nil }
                if got == 0 { break }
                count += got
            }
            guard count < buffer.count else { return nil }
            return .some(parse(UnsafeRawBufferPointer(rebasing: buffer[0..<count])))
        }
    }

    /// `key value` lines (`cpu.stat`, `memory.events`, `memory.oom_control`, `pids.events`).
    static func readKeyed(_ path: String) -> [String: UInt64] {
        read(path).map(parseKeyed) ?? [:]
    }

    /// The most bytes ``CgroupFile/readNumber()`` reads onto the stack; a longer file is
    /// read whole into an array.
    static let smallFile = 256

    /// Decimal digits with optional white space around them (`123\n`), as
    /// `UInt64(text.trimmed)` reads them; nil for anything else (`max`, a sign, an overflow).
    static func parseNumber(_ bytes: UnsafeRawBufferPointer) -> UInt64? {
        var start = 0, end = bytes.count
        while start < end && isSpace(bytes[start]) { start += 1 }
        while end > start && isSpace(bytes[end - 1]) { end -= 1 }
        guard start < end else { return nil }
        var value: UInt64 = 0
        for index in start..<end {
            let byte = bytes[index]
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times, overflowA) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflowB) = times.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            guard !overflowA && !overflowB else { return nil }
            value = sum
        }
        return value
    }

    /// The value of `key` in `key value` lines, as `parseKeyed(text)[key]` gives it.
    static func parseValue(_ bytes: UnsafeRawBufferPointer, key: String) -> UInt64? {
        var key = key
        return key.withUTF8 { key -> UInt64? in
            var result: UInt64?
            var lineStart = 0
            while lineStart < bytes.count {
                var lineEnd = lineStart
                while lineEnd < bytes.count && bytes[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
                // Fields split on spaces, empty ones dropped: exactly two, the first the key.
                var fields: [Range<Int>] = []
                var index = lineStart
                while index < lineEnd && fields.count < 3 {
                    while index < lineEnd && bytes[index] == UInt8(ascii: " ") { index += 1 }
                    let fieldStart = index
                    while index < lineEnd && bytes[index] != UInt8(ascii: " ") { index += 1 }
                    if index > fieldStart { fields.append(fieldStart..<index) }
                }
                if fields.count == 2, fields[0].count == key.count,
                   zip(fields[0], key).allSatisfy({ bytes[$0] == $1 }),
                   let value = parseNumber(UnsafeRawBufferPointer(rebasing: bytes[fields[1]])) {
                    result = value
                }
                lineStart = lineEnd + 1
            }
            return result
        }
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
            || byte == 0x0B || byte == 0x0C
    }

    static func parseKeyed(_ text: String) -> [String: UInt64] {
        var result: [String: UInt64] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let value = UInt64(parts[1]) { result[String(parts[0])] = value }
        }
        return result
    }

    static func pids(_ path: String) -> [Int32] {
        guard let text = read(path) else { return [] }
        return text.split(separator: "\n").compactMap { Int32($0) }
    }

    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    /// mkdir; an existing directory is fine when `existingIsFine`.
    static func makeDirectory(_ path: String, existingIsFine: Bool) throws(CgroupError) {
        if mkdir(path, 0o755) == 0 { return }
        let error = errno
        if error == EEXIST && existingIsFine { return }
        throw failure("mkdir", path, error)
    }

    /// mkdir -p below `root`, which must exist.
    static func makeDirectories(_ path: String, below root: String) throws(CgroupError) {
        guard path.hasPrefix(root) else { return try makeDirectory(path, existingIsFine: true) }
        var current = root
        for component in path.dropFirst(root.count).split(separator: "/") {
            current += "/" + component
            try makeDirectory(current, existingIsFine: true)
        }
    }

    /// rmdir; returns errno (0 on success).
    @discardableResult
    static func removeDirectory(_ path: String) -> Int32 {
        rmdir(path) == 0 ? 0 : errno
    }

    static func openForWriting(_ path: String) throws(CgroupError) -> Int32 {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure("open", path, errno) }
        return fd
    }

    static func entries(of directory: String) -> [String] {
        entries(of: directory, directoriesOnly: true)
    }

    static func entriesIncludingFiles(of directory: String) -> [String] {
        entries(of: directory, directoriesOnly: false)
    }

    private static func entries(of directory: String, directoriesOnly: Bool) -> [String] {
        guard let handle = opendir(directory) else { return [] }
        defer { closedir(handle) }
        var result: [String] = []
        while let entry = readdir(handle) {
            // A cgroup's control files are most of its entries: skipped before a name is made.
            if directoriesOnly && entry.pointee.d_type != UInt8(DT_DIR) { continue }
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { result.append(name) }
        }
        return result
    }

    static func failure(_ operation: String, _ path: String, _ error: Int32) -> CgroupError {
        CgroupError("\(operation) \(path): \(SetupFailure.describe(error))")
    }
}

extension StringProtocol {
    /// Without leading and trailing white space and newlines.
    var trimmed: String {
        String(drop(while: { $0.isWhitespace }).reversed().drop(while: { $0.isWhitespace }).reversed())
    }
}
