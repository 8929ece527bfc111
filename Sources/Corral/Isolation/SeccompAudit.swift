import CCorral
#if canImport(Glibc)
import Glibc
#endif

/// Which system call the seccomp filter killed a program for. The kernel does not put it in
/// the wait status; it writes an audit record (type 1326, AUDIT_SECCOMP):
///
///     audit(…): auid=… uid=65534 … pid=4242 comm="a.out" exe="/box/a.out" sig=31
///     arch=c000003e syscall=101 compat=0 ip=0x… code=0x80000000
///
/// `pid` is the process's pid as Corral sees it, which the program sent Corral before exec
/// (``CORRAL_STATUS_HELLO``). Corral listens for the record from before the program starts:
/// on the audit netlink socket's read-only multicast group (root: CAP_AUDIT_READ), which gets
/// every record, with or without an audit daemon; failing that, in the kernel's log
/// (`/dev/kmsg`, for a non-root Corral where `kernel.dmesg_restrict` is 0), where the kernel
/// copies records only when no audit daemon takes them, and at most 10 in 5 s. Where neither
/// has it, the report says the call was not named.
enum SeccompAudit {
    struct Record: Equatable, Sendable {
        var pid: Int32
        var signal: Int32
        /// AUDIT_ARCH_* of the call's ABI, e.g. 0xc000003e for x86_64, 0x40000003 for i386.
        var arch: UInt32
        var syscall: Int32
    }

    /// Where the records are read from; open from before the program starts, so that only
    /// records written after it count (pids are reused, and the kernel's log keeps old lines).
    enum Source: Sendable {
        /// A NETLINK_AUDIT socket in the read-log group: one datagram per record.
        case audit(Int32)
        /// `/dev/kmsg`, positioned at its end: one line per read.
        case kernelLog(Int32)

        var descriptor: Int32 {
            switch self {
            case .audit(let fd), .kernelLog(let fd): fd
            }
        }

        func close() { _ = Glibc.close(descriptor) }
    }

    /// The best source this process can have, or nil when it can read neither.
    static func listen() -> Source? {
        let socket = corral_audit_listen()
        if socket >= 0 { return .audit(socket) }
        let log = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard log >= 0 else { return nil }
        guard lseek(log, 0, SEEK_END) >= 0 else {
            Glibc.close(log)
            return nil
        }
        return .kernelLog(log)
    }

    /// The seccomp record in the text of an audit record (after its type), nil if it lacks a
    /// field. Strings a program controls (`comm`, `exe`) come after `pid` and are quoted or
    /// hex-encoded by the kernel when they hold a space, so they cannot fake a field; the
    /// first of each key counts.
    static func parse(fields text: Substring) -> Record? {
        var fields: [Substring: Substring] = [:]
        for token in text.split(separator: " ") {
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

    /// The seccomp record in a line of the kernel's log ("audit: type=1326 audit(…): …"),
    /// nil for any other line.
    static func parse(logLine line: Substring) -> Record? {
        let marker = Array("audit: type=1326 ".utf8)
        let bytes = line.utf8
        var index = bytes.startIndex
        while index != bytes.endIndex {
            if bytes[index...].starts(with: marker) {
                return parse(fields: line[bytes.index(index, offsetBy: marker.count)...])
            }
            index = bytes.index(after: index)
        }
        return nil
    }

    /// What to call the system call of `record` in a report: "ptrace (system call 101)",
    /// with the ABI when it is not the native one.
    static func describe(_ record: Record) -> String {
        var arch = record.arch
        var number = "\(record.syscall)"
        // x32 calls come in as x86_64 ones with bit 30 set in the number.
        if arch == 0xc000_003e && record.syscall & x32Bit != 0 {
            arch = 0x4000_003e
            number = "\(record.syscall & ~x32Bit) | 0x40000000"
        }
        let name = corral_seccomp_syscall_name(arch, record.syscall).map { pointer in
            defer { free(pointer) }
            return String(cString: pointer)
        }
        let abi = arch == nativeArch ? "" : "\(abiName(arch)) ABI, "
        guard let name else { return "system call \(number) (\(abi)a number libseccomp does not know)" }
        return "\(name) (\(abi)system call \(number))"
    }

    private static let x32Bit: Int32 = 0x4000_0000

    /// Looks in `source` for the seccomp kill of `pid`, waiting up to `patience` for the
    /// kernel's audit thread to send it. Nil when there is no such record by then. It waits
    /// with `sleep` (the given microseconds between passes): call it on a thread that may block.
    static func lookUp(in source: Source, pid: Int32, patience: Duration = .milliseconds(200), sleep: (UInt32) -> Void) -> Record? {
        let deadline = ContinuousClock.now + patience
        while true {
            // Each pass reads what is new since the last one.
            switch scan(source, pid: pid) {
            case .found(let record): return record
            case .unreadable: return nil
            case .notYet: break
            }
            if ContinuousClock.now >= deadline { return nil }
            sleep(2000)
        }
    }

    private enum Scan { case found(Record), notYet, unreadable }

    /// Reads what is waiting, one record per read.
    private static func scan(_ source: Source, pid: Int32) -> Scan {
        var buffer = [UInt8](repeating: 0, count: 8960)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(source.descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                switch errno {
                case EINTR: continue
                // The kernel's log overwrote records under us; the socket's buffer overflowed.
                case EPIPE, ENOBUFS: continue
                case EAGAIN: return .notYet
                default: return .unreadable
                }
            }
            if count == 0 { return .notYet }
            let record: Record?
            switch source {
            case .audit:
                // struct nlmsghdr (host byte order): length (4), type (2), flags (2),
                // sequence (4), port (4); then the record's text.
                guard count > 16 else { continue }
                let (declared, type) = buffer.withUnsafeBytes {
                    ($0.loadUnaligned(fromByteOffset: 0, as: UInt32.self), $0.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
                }
                let length = min(count, Int(declared))
                guard type == 1326, length > 16 else { continue }
                let text = String(decoding: buffer[16..<length].prefix { $0 != 0 }, as: UTF8.self)
                record = parse(fields: text[...])
            case .kernelLog:
                // "priority,sequence,time,flags;text\n" then continuation lines.
                let line = buffer[..<count]
                guard let semicolon = line.firstIndex(of: UInt8(ascii: ";")) else { continue }
                let end = line[semicolon...].firstIndex(of: UInt8(ascii: "\n")) ?? count
                let text = String(decoding: line[(semicolon + 1)..<end], as: UTF8.self)
                record = parse(logLine: text[...])
            }
            if let record, record.pid == pid, record.signal == SIGSYS { return .found(record) }
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
        case 0x4000_003e: "x32"
        case 0xc000_00b7: "aarch64"
        default: "arch 0x\(String(arch, radix: 16))"
        }
    }
}
