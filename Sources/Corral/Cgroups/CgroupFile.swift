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

    /// A number file (`cpuacct.usage`: the reaper's CPU check): parsed from the bytes
    /// read into a small buffer on the stack, no strings made.
    func readNumber() -> UInt64? {
        readSmall { CgroupFS.parseNumber($0) } ?? read().flatMap { UInt64($0.trimmed) }
    }

    /// The value of `key` in a `key value` file (`pids.events`), parsed as ``readNumber()``.
    func readValue(_ key: String) -> UInt64? {
        readSmall { CgroupFS.parseValue($0, key: key) } ?? readKeyed()[key]
    }

    func readKeyed() -> [String: UInt64] {
        read().map(CgroupFS.parseKeyed) ?? [:]
    }

    /// `parse` applied to the file's contents when they fit in ``CgroupFS/smallFile`` bytes;
    /// nil (after no parse) when they do not, or the read failed.
    private func readSmall<T>(_ parse: (UnsafeRawBufferPointer) -> T?) -> T?? {
        withUnsafeTemporaryAllocation(byteCount: CgroupFS.smallFile, alignment: 1) { buffer -> T?? in
            var count: Int
            repeat { count = pread(descriptor, buffer.baseAddress, buffer.count, 0) } while count < 0 && errno == EINTR
            guard count >= 0, count < buffer.count else { return nil }
            return .some(parse(UnsafeRawBufferPointer(rebasing: buffer[0..<count])))
        }
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
