import Corral
import CorralTestSupport
import Foundation
import Testing

/// The attacks the default seccomp profile closes beyond the original deny list: file locks
/// on the host's read-only files (they are the host's locks too), AF_VSOCK sockets (not
/// network-namespaced: they reach the hypervisor), and the kernel's log.
extension IntegrationTests {
@Suite("Seccomp default profile: locks, vsock, syslog", .enabled(if: geteuid() == 0, "these isolation tests run as root"))
struct SeccompDefaultProfileTests {
    /// A file every host has, mounted read-only inside.
    static let hostFile = FileManager.default.fileExists(atPath: "/usr/lib/os-release") ? "/usr/lib/os-release" : "/usr/bin/env"

    @Test("an isolated program's flock, lockf and OFD lock on a read-only host file do not block the host's own lock",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/flock"), "needs util-linux flock"))
    func locksDoNotReachTheHost() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        chmod(directory.path, 0o777)
        let file = Self.hostFile
        // Under flock(1): an fcntl read lock and an OFD read lock too, then it says "held"
        // and waits until the host has looked (at most 10 s).
        let locker = """
        import fcntl, os, struct, time
        f = open('\(file)')
        fcntl.lockf(f, fcntl.LOCK_SH)
        fcntl.fcntl(f, fcntl.F_OFD_SETLK, struct.pack('hhqqi4x', fcntl.F_RDLCK, 0, 0, 0, 0))
        open('/box/held', 'w').close()
        for _ in range(100):
            if os.path.exists('/box/checked'): break
            time.sleep(0.1)
        """
        try locker.write(toFile: directory.file("locker.py"), atomically: true, encoding: .utf8)
        let job = Job(arguments: ["/usr/bin/flock", file, "python3", "/box/locker.py"], workingDirectory: directory.path,
                      standardOutput: .capture(max: 4096), standardError: .capture(max: 4096),
                      limits: Limits(wallTime: .seconds(30)), isolation: Isolation())
        let running = Task { try await run(job) }
        var waited = 0
        while !FileManager.default.fileExists(atPath: directory.file("held")) && waited < 1000 {
            usleep(10_000)
            waited += 1
        }
        let held = FileManager.default.fileExists(atPath: directory.file("held"))
        // The host takes its own locks on the same file, without waiting.
        let hostFlock = try Spawn.run("/usr/bin/flock", ["-n", file, "/bin/true"])
        let query = """
        import fcntl, struct
        f = open('\(file)')
        answer = fcntl.fcntl(f, fcntl.F_GETLK, struct.pack('hhqqi4x', fcntl.F_WRLCK, 0, 0, 0, 0))
        print('unlocked' if struct.unpack('hhqqi4x', answer)[0] == fcntl.F_UNLCK else 'locked')
        """
        let hostQuery = try Spawn.run("/usr/bin/python3", ["-c", query])
        FileManager.default.createFile(atPath: directory.file("checked"), contents: nil)
        let report = try await running.value
        #expect(held, "the isolated program never got past its locks: \(report.message) \(report.stderr?.text ?? "")")
        #expect(report.status == .ok, "\(report.message) \(report.stderr?.text ?? "")")
        #expect(hostFlock.status == 0, "the host's flock -n \(file) failed: the isolated program's flock holds the host's lock")
        #expect(hostQuery.standardOutput == "unlocked\n", "an isolated program's fcntl lock is visible to the host: \(hostQuery.standardOutput) \(hostQuery.standardError)")
    }

    @Test("a program running as uid 0 cannot take a lease on a host file it owns, which would hold up the host's opens of it")
    func noLeaseOnHostFiles() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        chmod(directory.path, 0o777)
        let file = Self.hostFile
        let leaser = """
        import fcntl, os, time
        f = open('\(file)')
        try:
            fcntl.fcntl(f, fcntl.F_SETLEASE, fcntl.F_RDLCK); print('lease')
        except OSError as e:
            print('errno', e.errno)
        open('/box/held', 'w').close()
        for _ in range(100):
            if os.path.exists('/box/checked'): break
            time.sleep(0.1)
        """
        try leaser.write(toFile: directory.file("leaser.py"), atomically: true, encoding: .utf8)
        let job = Job(arguments: ["python3", "/box/leaser.py"], workingDirectory: directory.path,
                      standardOutput: .capture(max: 4096), standardError: .capture(max: 4096),
                      limits: Limits(wallTime: .seconds(30)), isolation: Isolation(uid: 0, gid: 0))
        let running = Task { try await run(job) }
        var waited = 0
        while !FileManager.default.fileExists(atPath: directory.file("held")) && waited < 1000 {
            usleep(10_000)
            waited += 1
        }
        // The host opens the file for writing; a read lease held inside would make it wait
        // (here: EWOULDBLOCK, without waiting) until the lease is given up.
        let hostOpen = open(file, O_WRONLY | O_NONBLOCK | O_CLOEXEC)
        let hostError = errno
        if hostOpen >= 0 { close(hostOpen) }
        FileManager.default.createFile(atPath: directory.file("checked"), contents: nil)
        let report = try await running.value
        #expect(report.status == .ok, "\(report.message) \(report.stderr?.text ?? "")")
        #expect(report.stdout?.text == "errno \(EAGAIN)\n")
        #expect(hostOpen >= 0, "the host could not open \(file) for writing: \(String(cString: strerror(hostError)))")
    }

    @Test("programs that lock their own files keep working: sqlite in /box, flock in /tmp, Python's filelock pattern")
    func locksOfOwnFilesWork() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        chmod(directory.path, 0o777)
        let script = """
        import fcntl, sqlite3
        c = sqlite3.connect('/box/t.db'); c.execute('create table t(x)'); c.execute('insert into t values (42)'); c.commit()
        print(c.execute('select x from t').fetchone()[0])
        f = open('/tmp/lock', 'w'); fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB); fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(f, fcntl.LOCK_UN); print('locked')
        """
        let report = try await run(Job(arguments: ["python3", "-c", script], workingDirectory: directory.path,
                                       standardOutput: .capture(max: 4096), standardError: .capture(max: 4096),
                                       limits: Limits(wallTime: .seconds(20)), isolation: Isolation()))
        #expect(report.status == .ok, "\(report.message) \(report.stderr?.text ?? "")")
        #expect(report.stdout?.text == "42\nlocked\n")
    }

    @Test("an AF_VSOCK socket cannot be made (with garbage in the upper half of the argument too); other families still can")
    func noVsock() async throws {
        let script = """
        import ctypes, socket
        libc = ctypes.CDLL(None, use_errno=True)
        for domain in (40, 0x7fffffff00000028):
            fd = libc.syscall(41, ctypes.c_long(domain), socket.SOCK_STREAM, 0)
            print(fd if fd >= 0 else 'errno %d' % ctypes.get_errno())
        socket.socket(socket.AF_INET, socket.SOCK_STREAM).close(); socket.socket(socket.AF_UNIX).close(); print('inet and unix')
        """
        let report = try await run(Job(arguments: ["python3", "-c", script], standardOutput: .capture(max: 4096),
                                       standardError: .capture(max: 4096), limits: Limits(wallTime: .seconds(20)), isolation: Isolation()))
        #expect(report.status == .ok, "\(report.message) \(report.stderr?.text ?? "")")
        #expect(report.stdout?.text == "errno \(EAFNOSUPPORT)\nerrno \(EAFNOSUPPORT)\ninet and unix\n")
    }

    @Test("syslog (reading the kernel's log) kills the program: syscall-violation, naming the call")
    func noSyslog() async throws {
        // syslog(SYSLOG_ACTION_READ_ALL, buffer, 4096)
        let code = "import ctypes; b = ctypes.create_string_buffer(4096); print(ctypes.CDLL(None).syscall(103, 3, b, 4096))"
        let report = try await run(Job(arguments: ["python3", "-c", code], standardOutput: .capture(max: 4096), standardError: .null,
                                       limits: Limits(wallTime: .seconds(20)), isolation: Isolation()))
        #expect(report.status == .syscallViolation, "\(report.message) \(report.stdout?.text ?? "")")
        #if arch(x86_64)
        #expect(report.message.hasPrefix("killed by the seccomp filter for calling syslog (system call 103) after"), "\(report.message)")
        #endif
    }
}
}
