#if canImport(Glibc)
import Glibc
#endif

/// A cgroup control file kept open: a read is one `pread` at offset 0 (the kernel
/// generates the contents afresh), a write one `write`. Pooled run cgroups keep theirs.
/// Not for v1 `cgroup.procs` reads, which the kernel caches per open file.
final class CgroupFile: @unchecked Sendable {
    let path: String
    let descriptor: Int32

    init(_ path: String, writable: Bool = false) throws(CgroupError) {
        let fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC)
        guard fd >= 0 else { throw CgroupFS.failure("open", path, errno) }
        self.path = path
        self.descriptor = fd
    }

    deinit { close(descriptor) }

    func read() -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        var count: Int
        repeat {
            count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, 0) }
        } while count < 0 && errno == EINTR
        guard count >= 0 else { return nil }
        if count == buffer.count { return CgroupFS.read(path) } // longer than a page: read it whole
        return String(decoding: buffer[0..<count], as: UTF8.self)
    }

    func readNumber() -> UInt64? {
        read().flatMap { UInt64($0.trimmed) }
    }

    func readKeyed() -> [String: UInt64] {
        read().map(CgroupFS.parseKeyed) ?? [:]
    }

    func write(_ value: String) throws(CgroupError) {
        var bytes = Array(value.utf8)
        let written = bytes.withUnsafeMutableBytes { buffer in
            var result: Int
            repeat { result = Glibc.write(descriptor, buffer.baseAddress, buffer.count) } while result < 0 && errno == EINTR
            return result
        }
        guard written == bytes.count else {
            throw CgroupFS.failure("write \"\(value)\" to", path, written < 0 ? errno : EIO)
        }
    }
}
