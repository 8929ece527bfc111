#if canImport(Glibc)
import Glibc
#endif

/// A procfs file the reaper reads again and again (its own `children` lists, a run's main
/// process's `stat` and `children`), kept open: each read is one `pread` at offset 0 (procfs
/// generates the contents afresh at every read from the start) into a buffer on the stack,
/// parsed in place. No path is built and no array made per read: the reaper looks at these
/// at every wake-up of a long run, and doing that by path was most of its CPU.
///
/// A file of a process (`/proc/PID/...`) opened while that process is Corral's unreaped
/// child names that very process for as long as it is open: once the process is gone, a
/// read fails (ESRCH) instead of reading a later process that got the same pid.
final class ProcFile {
    /// Large enough for a `stat` line and a few hundred child pids.
    static let bufferSize = 4096

    let path: String
    private let descriptor: Int32

    init?(_ path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        self.path = path
        self.descriptor = fd
    }

    deinit { close(descriptor) }

    /// `parse` applied to the whole contents; nil when the read fails (the process is gone).
    func read<T>(_ parse: (UnsafeRawBufferPointer) -> T) -> T? {
        let small = withUnsafeTemporaryAllocation(byteCount: Self.bufferSize, alignment: 1) { buffer -> T?? in
            let count = Self.pread(descriptor, buffer.baseAddress, buffer.count, 0)
            guard count >= 0 else { return .some(nil) }
            guard count < buffer.count else { return nil } // may be longer: read it whole
            return .some(parse(UnsafeRawBufferPointer(rebasing: buffer[0..<count])))
        }
        if let small { return small }
        return readWhole().map { bytes in bytes.withUnsafeBytes(parse) }
    }

    /// The contents of a file longer than the stack buffer, read from the start again.
    private func readWhole() -> [UInt8]? {
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Self.pread(descriptor, $0.baseAddress, $0.count, off_t(result.count)) }
            guard count >= 0 else { return nil }
            if count == 0 { return result }
            result.append(contentsOf: chunk[0..<count])
        }
    }

    private static func pread(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int, _ offset: off_t) -> Int {
        var result: Int
        repeat { result = Glibc.pread(fd, buffer, count, offset) } while result < 0 && errno == EINTR
        return result
    }
}

/// The `stat` and (main thread's) `children` files of one process, opened together.
struct ProcessFiles {
    let stat: ProcFile
    let children: ProcFile

    /// Nil when either cannot be opened (the process is gone, or no procfs).
    init?(_ pid: Int32) {
        guard let stat = ProcFile("/proc/\(pid)/stat"),
              let children = ProcFile("/proc/\(pid)/task/\(pid)/children")
        else { return nil }
        self.stat = stat
        self.children = children
    }
}
