#if canImport(Glibc)
import Glibc
#endif

/// What Corral reads of `/proc/PID/stat`.
struct ProcessStat: Sendable, Hashable {
    var state: UInt8
    var parent: Int32
    var group: Int32
    var session: Int32
    /// utime + stime + cutime + cstime, in clock ticks: the process's own CPU and that of
    /// the children it has reaped.
    var cpuTicks: Int64
    /// cutime + cstime alone: the CPU of the children it has reaped.
    var reapedChildrenTicks: Int64
    var threads: Int
    /// Clock ticks after boot.
    var startTime: UInt64
    /// Resident set size now, in pages.
    var residentPages: Int64
}

/// Small, allocation-light readers of procfs, for the reaper's sampling.
enum ProcFS {
    static let ticksPerSecond = Int64(sysconf(Int32(_SC_CLK_TCK)))
    static let pageSize = Int64(sysconf(Int32(_SC_PAGESIZE)))

    /// Reads a small file whole; nil when it cannot be opened (the process is gone).
    static func read(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var result: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return result.isEmpty ? nil : result
            }
            if count == 0 { break }
            result.append(contentsOf: chunk[0..<count])
        }
        return result
    }

    static func stat(_ pid: Int32) -> ProcessStat? {
        read("/proc/\(pid)/stat")?.withUnsafeBytes(parseStat) ?? nil
    }

    /// A `stat` line's fields after the command name (which may hold spaces and parentheses:
    /// the last `)` ends it), parsed from the bytes as read.
    static func parseStat(_ bytes: UnsafeRawBufferPointer) -> ProcessStat? {
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")), close + 2 < bytes.count else { return nil }
        // Fields 3 (state) to 24 (rss) of proc(5), counted from 0 after the name; the
        // state's letter reads as 0.
        return withUnsafeTemporaryAllocation(of: Int64.self, capacity: 22) { number -> ProcessStat? in
            var field = 0
            var value: Int64 = 0
            var negative = false
            var inField = false
            for byte in bytes[(close + 2)...] where field < number.count {
                if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") {
                    if inField {
                        number[field] = negative ? -value : value
                        field += 1
                    }
                    (value, negative, inField) = (0, false, false)
                } else {
                    inField = true
                    if byte == UInt8(ascii: "-") {
                        negative = true
                    } else if byte >= 48 && byte <= 57 {
                        value = value &* 10 &+ Int64(byte - 48)
                    }
                }
            }
            if inField && field < number.count {
                number[field] = negative ? -value : value
                field += 1
            }
            guard field == number.count else { return nil }
            return ProcessStat(
                state: bytes[close + 2],
                parent: Int32(truncatingIfNeeded: number[1]),
                group: Int32(truncatingIfNeeded: number[2]),
                session: Int32(truncatingIfNeeded: number[3]),
                cpuTicks: number[11] + number[12] + number[13] + number[14],
                reapedChildrenTicks: number[13] + number[14],
                threads: Int(number[17]),
                startTime: UInt64(max(0, number[19])),
                residentPages: number[21]
            )
        }
    }

    /// The CPU time `pid` has used so far (all its threads, not its children), in
    /// microseconds, from its CPU-time clock: exact, where `/proc`'s stat counts whole clock
    /// ticks (10 ms). Nil when the process is gone.
    static func ownCPUMicros(_ pid: Int32) -> Int64? {
        var clock: clockid_t = 0
        guard clock_getcpuclockid(pid, &clock) == 0 else { return nil }
        var time = timespec()
        guard clock_gettime(clock, &time) == 0 else { return nil }
        return Int64(time.tv_sec) * 1_000_000 + Int64(time.tv_nsec) / 1000
    }

    /// The children of every thread of `pid` (children hang off the thread that forked
    /// them). `threads` from its stat saves the directory listing for one-thread processes.
    static func children(of pid: Int32, threads: Int) -> [Int32] {
        if threads <= 1 {
            return pids(in: "/proc/\(pid)/task/\(pid)/children")
        }
        return children(ofThreads: threadIDs(of: pid), in: pid)
    }

    static func children(ofThreads threads: [Int32], in pid: Int32) -> [Int32] {
        var result: [Int32] = []
        for thread in threads {
            result += pids(in: "/proc/\(pid)/task/\(thread)/children")
        }
        return result
    }

    static func threadIDs(of pid: Int32) -> [Int32] {
        guard let directory = opendir("/proc/\(pid)/task") else { return [pid] }
        defer { closedir(directory) }
        var result: [Int32] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if let thread = Int32(name) { result.append(thread) }
        }
        return result
    }

    private static func pids(in path: String) -> [Int32] {
        read(path)?.withUnsafeBytes(parsePids) ?? []
    }

    /// The pids of a `children` file: numbers separated by spaces.
    static func parsePids(_ bytes: UnsafeRawBufferPointer) -> [Int32] {
        var result: [Int32] = []
        var value: Int32 = 0
        var inNumber = false
        for byte in bytes {
            if byte >= 48 && byte <= 57 {
                value = value &* 10 &+ Int32(byte - 48)
                inNumber = true
            } else if inNumber {
                result.append(value)
                value = 0
                inNumber = false
            }
        }
        if inNumber { result.append(value) }
        return result
    }
}
