import CCorral
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The seccomp filter of an isolated run, installed last, right before exec.
public enum SeccompProfile: Sendable, Hashable, Codable {
    /// A deny list that keeps ordinary language runtimes working (compilers, Python, Java,
    /// Go, Node) and kills the program on what a sandboxed program never needs: ptrace and
    /// process_vm_*, the mount family, pivot_root, chroot, swap, reboot, kexec, modules, bpf,
    /// perf_event_open, keyrings, userfaultfd, io_uring, namespace creation (unshare, setns,
    /// clone with namespace flags; clone3 answers ENOSYS so the C library falls back to
    /// clone), ioctl(TIOCSTI), syslog, and foreign ABIs (i386 and x32 on x86_64). It also
    /// makes file locks no-ops (flock, fcntl's F_SETLK, F_SETLKW, F_OFD_SETLK, F_OFD_SETLKW
    /// return 0 without locking: a lock on a read-only host file would be the host's lock
    /// too), fails F_SETLEASE with EAGAIN and socket(AF_VSOCK) with EAFNOSUPPORT.
    case standard
    /// No filter.
    case none
    /// A policy of one's own (``SeccompPolicy``).
    case policy(SeccompPolicy)
}

/// A seccomp policy in Corral's small text format, one statement a line, `#` comments:
///
/// ```
/// default allow          # or: default deny, default errno 1
/// deny ptrace            # kill the program on ptrace
/// errno 1 socket         # fail socket with EPERM
/// allow read             # (useful after "default deny")
/// ```
///
/// `deny` kills the program (status `syscall-violation`); `errno N` makes the call fail with
/// errno N; `allow` lets it through.
public struct SeccompPolicy: Sendable, Hashable, Codable {
    public enum Action: Sendable, Hashable, Codable {
        case allow
        case deny
        case errno(UInt16)

        var value: UInt32 {
            switch self {
            case .allow: CORRAL_SECCOMP_ALLOW
            case .deny: CORRAL_SECCOMP_KILL_PROCESS
            case .errno(let number): 0x0005_0000 | UInt32(number)
            }
        }
    }

    public var defaultAction: Action
    public var rules: [(name: String, action: Action)] {
        get { ruleList.map { ($0.name, $0.action) } }
        set { ruleList = newValue.map { Rule(name: $0.name, action: $0.action) } }
    }

    struct Rule: Sendable, Hashable, Codable {
        var name: String
        var action: Action
    }
    private var ruleList: [Rule]

    public init(defaultAction: Action, rules: [(name: String, action: Action)]) {
        self.defaultAction = defaultAction
        self.ruleList = rules.map { Rule(name: $0.name, action: $0.action) }
    }

    /// Parses the text format; an unknown statement or system call names its line.
    public static func parse(_ text: String) throws(LimitParseError) -> SeccompPolicy {
        var policy = SeccompPolicy(defaultAction: .allow, rules: [])
        for (offset, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            if words.isEmpty { continue }
            let number = offset + 1
            func action(_ words: ArraySlice<String>) throws(LimitParseError) -> (Action, ArraySlice<String>) {
                switch words.first {
                case "allow": return (.allow, words.dropFirst())
                case "deny": return (.deny, words.dropFirst())
                case "errno":
                    guard words.count >= 2, let value = UInt16(words[words.startIndex + 1]), value > 0, value < 4096 else {
                        throw LimitParseError("line \(number): errno takes a number from 1 to 4095")
                    }
                    return (.errno(value), words.dropFirst(2))
                default:
                    throw LimitParseError("line \(number): expected allow, deny, errno N or default, got '\(words.first ?? "")'")
                }
            }
            if words[0] == "default" {
                let (chosen, rest) = try action(words.dropFirst())
                guard rest.isEmpty else { throw LimitParseError("line \(number): default takes only an action") }
                policy.defaultAction = chosen
                continue
            }
            let (chosen, names) = try action(words[...])
            guard !names.isEmpty else { throw LimitParseError("line \(number): no system call named") }
            for name in names {
                guard corral_seccomp_resolve(name) >= 0 else {
                    throw LimitParseError("line \(number): unknown system call '\(name)'")
                }
                policy.ruleList.append(Rule(name: name, action: chosen))
            }
        }
        return policy
    }

    public static func == (lhs: SeccompPolicy, rhs: SeccompPolicy) -> Bool {
        lhs.defaultAction == rhs.defaultAction && lhs.ruleList == rhs.ruleList
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(defaultAction)
        hasher.combine(ruleList)
    }
}

/// A compiled filter, shared by every run with the same profile.
final class SeccompFilter: @unchecked Sendable {
    private var program = corral_seccomp_program()

    var length: UInt16 { program.length }
    var instructions: UnsafeRawPointer? { UnsafeRawPointer(program.filter) }

    private static let cache = Mutex<[SeccompProfile: SeccompFilter]>([:])

    private init() {}

    deinit { corral_seccomp_free(&program) }

    /// The filter for `profile`; nil for `.none`.
    static func filter(for profile: SeccompProfile) throws(SetupFailure) -> SeccompFilter? {
        if profile == .none { return nil }
        if let cached = cache.withLock({ $0[profile] }) { return cached }
        if let reason = corral_seccomp_load() {
            throw SetupFailure(stage: "seccomp", errno: ENOSYS,
                               message: "seccomp: libseccomp.so.2 could not be loaded (\(String(cString: reason))); run with --seccomp none to go without a filter")
        }
        let (defaultAction, rules) = ruleSet(for: profile)
        let filter = SeccompFilter()
        var failed: Int32 = -1
        var cRules: [corral_seccomp_rule] = []
        let names = rules.map { strdup($0.name)! }
        defer { names.forEach { free($0) } }
        for (index, rule) in rules.enumerated() {
            cRules.append(corral_seccomp_rule(name: UnsafePointer(names[index]), action: rule.action, argument: rule.argument ?? -1,
                                              mask: rule.mask, value: rule.value))
        }
        let error = corral_seccomp_build(defaultAction, cRules, Int32(cRules.count), &filter.program, &failed)
        guard error == 0 else {
            let which = failed >= 0 ? " (rule for \(rules[Int(failed)].name))" : ""
            throw SetupFailure(stage: "seccomp", errno: error, message: "seccomp: building the filter\(which): \(SetupFailure.describe(error))")
        }
        cache.withLock { $0[profile] = filter }
        return filter
    }

    struct RawRule {
        var name: String
        var action: UInt32
        var argument: Int32?
        var mask: UInt64 = 0
        var value: UInt64 = 0
    }

    static let deniedByDefault = [
        "ptrace", "process_vm_readv", "process_vm_writev",
        "mount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
        "swapon", "swapoff", "reboot", "kexec_load", "kexec_file_load",
        "init_module", "finit_module", "delete_module", "bpf", "perf_event_open",
        "keyctl", "add_key", "request_key", "userfaultfd",
        "io_uring_setup", "io_uring_enter", "io_uring_register",
        "unshare", "setns", "acct", "syslog",
    ]

    /// SECCOMP_RET_ERRNO with errno 0: the call returns 0 without doing anything.
    static let noOp: UInt32 = 0x0005_0000

    /// fcntl commands that take a lock: F_SETLK, F_SETLKW, F_OFD_SETLK, F_OFD_SETLKW (and
    /// on 32-bit architectures' fcntl64 also F_SETLK64, F_SETLKW64).
    static let lockCommands: [UInt64] = [6, 7, 37, 38]
    static let lockCommands64: [UInt64] = [6, 7, 13, 14, 37, 38]

    static func ruleSet(for profile: SeccompProfile) -> (UInt32, [RawRule]) {
        switch profile {
        case .none: return (CORRAL_SECCOMP_ALLOW, [])
        case .policy(let policy):
            return (policy.defaultAction.value, policy.rules.map { RawRule(name: $0.name, action: $0.action.value) })
        case .standard:
            // Names this architecture does not have are left out.
            var rules = deniedByDefault.filter { corral_seccomp_resolve($0) >= 0 }
                .map { RawRule(name: $0, action: CORRAL_SECCOMP_KILL_PROCESS) }
            let namespaceFlags: [UInt64] = [0x0002_0000, 0x0200_0000, 0x0400_0000, 0x0800_0000, 0x1000_0000, 0x2000_0000, 0x4000_0000, 0x80]
            for flag in namespaceFlags {
                rules.append(RawRule(name: "clone", action: CORRAL_SECCOMP_KILL_PROCESS, argument: 0, mask: flag, value: flag))
            }
            if corral_seccomp_resolve("clone3") >= 0 {
                rules.append(RawRule(name: "clone3", action: 0x0005_0000 | UInt32(ENOSYS)))
            }
            rules.append(RawRule(name: "ioctl", action: CORRAL_SECCOMP_KILL_PROCESS, argument: 1, mask: 0xffff_ffff, value: 0x5412)) // TIOCSTI
            // AF_VSOCK sockets are not network-namespaced: they reach the hypervisor. The
            // answer of a kernel without vsock, which programs that probe families handle.
            rules.append(RawRule(name: "socket", action: 0x0005_0000 | UInt32(EAFNOSUPPORT), argument: 0, mask: 0xffff_ffff, value: 40))
            // A lock on a file of a read-only host mount is the host's lock too. Seccomp cannot
            // tell that file from the program's own, so every lock is a no-op: programs that
            // lock their own files (sqlite, pip, Java) go on as if alone; nothing reaches the host.
            rules.append(RawRule(name: "flock", action: noOp))
            for (name, commands) in [("fcntl", lockCommands), ("fcntl64", lockCommands64)] where corral_seccomp_resolve(name) >= 0 {
                for command in commands {
                    rules.append(RawRule(name: name, action: noOp, argument: 1, mask: 0xffff_ffff, value: command))
                }
                // A lease (F_SETLEASE) on a host file the run's user owns would hold up the
                // host's opens of it: refused as a conflicting open would be.
                rules.append(RawRule(name: name, action: 0x0005_0000 | UInt32(EAGAIN), argument: 1, mask: 0xffff_ffff, value: 1024))
            }
            return (CORRAL_SECCOMP_ALLOW, rules)
        }
    }
}
