import Corral
import CorralTestSupport
import Foundation
import Testing

/// Isolation's seccomp filter: the standard filter, foreign ABIs, policy files.
extension IntegrationTests.IsolationTests {
    @Test("the standard filter kills ptrace, namespace creation, TIOCSTI and x32 calls: syscall-violation, naming the call", arguments: [
        ("import ctypes; ctypes.CDLL(None).syscall(101, 16, 1, 0, 0)", "ptrace (system call 101)"),        // ptrace(PTRACE_ATTACH, 1)
        ("import ctypes; ctypes.CDLL(None).unshare(0x10000000)", "unshare (system call 272)"),              // unshare(CLONE_NEWUSER)
        ("import fcntl; fcntl.ioctl(0, 0x5412, b'x')", "ioctl (system call 16)"),                           // ioctl(TIOCSTI)
        ("import ctypes; ctypes.CDLL(None).syscall(310, 1, 0, 1, 0, 1, 0)", "process_vm_readv (system call 310)"),
        ("import ctypes; ctypes.CDLL(None).syscall(0x40000027)", "getpid (x32 ABI, system call 39 | 0x40000000)"), // a foreign ABI
    ])
    func standardFilter(code: String, call: String) async throws {
        let report = try await run(Job(arguments: ["python3", "-c", code], standardError: .null, limits: Limits(wallTime: .seconds(20)),
                                       isolation: Isolation()))
        #expect(report.status == .syscallViolation, "\(report.message)")
        #expect(report.signalName == "SIGSYS")
        #expect(report.commandExitCode == 159)
        #if arch(x86_64)
        if AuditRecords.readable {
            // The kernel records the kill with the call's number; Corral finds it by the program's pid.
            #expect(report.message.hasPrefix("killed by the seccomp filter for calling \(call) after"), "\(report.message)")
        } else {
            #expect(report.message.contains("(not named: the kernel's audit records are root's to read here)"), "\(report.message)")
        }
        #endif
    }

    #if arch(x86_64)
    @Test("a call of a foreign ABI (i386's int 0x80) is killed, and named with its ABI")
    func foreignABI() async throws {
        let fixture = try Fixtures.path("i386_call")
        let directory = URL(fileURLWithPath: fixture).deletingLastPathComponent().path
        let report = try await run(Job(arguments: [fixture], limits: Limits(wallTime: .seconds(10)),
                                       isolation: Isolation(binds: [Isolation.Bind(source: directory)])))
        #expect(report.status == .syscallViolation, "\(report.message)")
        if AuditRecords.readable {
            #expect(report.message.hasPrefix("killed by the seccomp filter for calling getpid (i386 ABI, system call 20) after"), "\(report.message)")
        }
    }
    #endif

    @Test("a policy file: errno N makes a call fail, deny kills, and unknown names are refused")
    func policy() async throws {
        let policy = try SeccompPolicy.parse("""
        default allow   # everything else
        errno 1 socket
        deny getppid
        """)
        let failing = try await run(Job(arguments: ["python3", "-c", "import socket\ntry:\n socket.socket()\nexcept PermissionError:\n print('EPERM')"],
                                        standardOutput: .capture(max: 100), isolation: Isolation(seccomp: .policy(policy))))
        #expect(failing.stdout?.text == "EPERM\n")
        let killed = try await run(Job(arguments: ["python3", "-c", "import os; os.getppid()"], isolation: Isolation(seccomp: .policy(policy))))
        #expect(killed.status == .syscallViolation)
        #expect(throws: LimitParseError.self) { try SeccompPolicy.parse("deny no_such_call") }
        #expect(throws: LimitParseError.self) { try SeccompPolicy.parse("forbid ptrace") }
        let none = try await run(Job(arguments: ["python3", "-c", "import os; os.getppid()"], isolation: Isolation(seccomp: .none)))
        #expect(none.status == .ok)
    }
}
