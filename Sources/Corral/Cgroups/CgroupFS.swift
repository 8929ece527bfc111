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
        guard let text = read(path) else { return nil }
        return UInt64(text.trimmed)
    }

    /// `key value` lines (`cpu.stat`, `memory.events`, `memory.oom_control`, `pids.events`).
    static func readKeyed(_ path: String) -> [String: UInt64] {
        read(path).map(parseKeyed) ?? [:]
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
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." && (!directoriesOnly || entry.pointee.d_type == UInt8(DT_DIR)) { result.append(name) }
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
