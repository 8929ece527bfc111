import CCorral
#if canImport(Glibc)
import Glibc
#endif

/// Which system call the seccomp filter killed a program for. The kernel does not put it in
/// the wait status; it logs it, as an audit record (type 1326) that reaches the kernel's log
/// when no audit daemon takes it:
///
///     audit: type=1326 audit(…): auid=… uid=65534 … pid=4242 comm="a.out" exe="/box/a.out"
///     sig=31 arch=c000003e syscall=101 compat=0 ip=0x… code=0x80000000
///
/// `pid` is the process's pid as Corral sees it, which the program sent Corral before exec
/// (``CORRAL_STATUS_HELLO``). Reading the log (`/dev/kmsg`) needs root (or
/// `kernel.dmesg_restrict = 0`); the kernel rate-limits these lines (10 in 5 s across the
/// machine) and writes them from a kernel thread a moment after the kill. Where the record
/// cannot be had, the report says the call was not named.
enum SeccompAudit {
    struct Record: Equatable, Sendable {
        var pid: Int32
        var signal: Int32
        /// AUDIT_ARCH_* of the call's ABI, e.g. 0xc000003e for x86_64, 0x40000003 for i386.
        var arch: UInt32
        var syscall: Int32
    }

    /// The record of a seccomp kill in one line of the kernel's log, nil for any other line.
    /// Strings a program controls (`comm`, `exe`) are quoted or hex-encoded by the kernel
    /// when they hold a space, so they cannot fake a field; the first of each key counts.
    static func parse(_ line: Substring) -> Record? {
        guard let start = line.range(of: "audit: type=1326 ") else { return nil }
        var fields: [Substring: Substring] = [:]
        for token in line[start.upperBound...].split(separator: " ") {
            guard let equals = token.firstIndex(of: "=") else { continue }
            let key = token[..<equals]
            if fields[key] == nil { fields[key] = token[token.index(after: equals)...] }
        }
        guard let pid = fields["pid"].flatMap({ Int32($0) }),
              let signal = fields["sig"].flatMap({ Int32($0) }),
              let arch = fields["arch"].flatMap({ UInt32($0, radix: 16) }),
              let syscall = fields["syscall"].flatMap({ Int32($0) }) else { return nil }
        return Record(pid: pid, signal: signal, arch: arch, syscall: syscall)
    }

    /// What to call the system call of `record` in a report: "ptrace (system call 101)",
    /// with the ABI when it is not the native one.
    static func describe(_ record: Record) -> String {
        let name = corral_seccomp_syscall_name(record.arch, record.syscall).map { pointer in
            defer { free(pointer) }
            return String(cString: pointer)
        }
        let abi = record.arch == nativeArch ? "" : "\(abiName(record.arch)) ABI, "
        return "\(name ?? "an unknown call") (\(abi)system call \(record.syscall))"
    }

    /// The kernel's log, positioned at its end: opened before the program starts, so that
    /// only records written after it are read (pids are reused, and the log keeps old
    /// records). Nil when it cannot be read (not root, with `dmesg_restrict`).
    static func openLog() -> Int32? {
        let fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        guard lseek(fd, 0, SEEK_END) >= 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    /// Looks in `log` (from ``openLog()``) for the seccomp kill of `pid`, waiting up to
    /// `patience` for the kernel's audit thread to write it. Nil when there is no such
    /// record by then.
    static func lookUp(in log: Int32, pid: Int32, patience: Duration = .milliseconds(200)) async -> Record? {
        let deadline = ContinuousClock.now + patience
        while true {
            // Each pass reads what is new since the last one.
            switch scan(log, pid: pid) {
            case .found(let record): return record
            case .unreadable: return nil
            case .notYet: break
            }
            if ContinuousClock.now >= deadline { return nil }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    private enum Scan { case found(Record), notYet, unreadable }

    /// Reads records up to the end of the log (one record per read).
    private static func scan(_ fd: Int32, pid: Int32) -> Scan {
        var buffer = [UInt8](repeating: 0, count: 8192)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                switch errno {
                case EINTR, EPIPE: continue // EPIPE: records were overwritten under us
                case EAGAIN: return .notYet
                default: return .unreadable
                }
            }
            if count == 0 { return .notYet }
            // "priority,sequence,time,flags;text\n" then continuation lines.
            let record = buffer[..<count]
            guard let semicolon = record.firstIndex(of: UInt8(ascii: ";")) else { continue }
            let end = record[semicolon...].firstIndex(of: UInt8(ascii: "\n")) ?? count
            let text = String(decoding: record[(semicolon + 1)..<end], as: UTF8.self)
            if let parsed = parse(text[...]), parsed.pid == pid, parsed.signal == SIGSYS {
                return .found(parsed)
            }
        }
    }

    #if arch(x86_64)
    static let nativeArch: UInt32 = 0xc000_003e
    #elseif arch(arm64)
    static let nativeArch: UInt32 = 0xc000_00b7
    #else
    static let nativeArch: UInt32 = 0
    #endif

    private static func abiName(_ arch: UInt32) -> String {
        switch arch {
        case 0x4000_0003: "i386"
        case 0x4000_0028: "arm"
        case 0xc000_003e: "x86_64"
        case 0xc000_00b7: "aarch64"
        default: "arch 0x\(String(arch, radix: 16))"
        }
    }
}
