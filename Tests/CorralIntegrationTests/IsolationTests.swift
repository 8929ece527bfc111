import Corral
import CorralTestSupport
import Foundation
import Testing

private let root = geteuid() == 0
private let needsRoot = "these isolation tests run as root (the rootless subset is in CLITests, as uid 1000)"

/// `text` as a JSON string literal.
private func jsonString(_ text: String) throws -> String {
    String(decoding: try JSONEncoder().encode(text), as: UTF8.self)
}

extension IntegrationTests {
@Suite("Isolation", .enabled(if: root, Comment(rawValue: needsRoot)))
struct IsolationTests {
    func isolated(_ script: String, network: Isolation.Network = .none, limits: Limits = Limits(wallTime: .seconds(20))) async throws -> RunReport {
        let report = try await run(Job(arguments: ["/bin/sh", "-c", script], standardOutput: .capture(max: 1 << 20),
                                       standardError: .capture(max: 1 << 20), limits: limits,
                                       isolation: Isolation(network: network)))
        #expect(report.isolated)
        return report
    }

    @Test("hostname corral, user nobody, no capability in any set, PID 2 under Corral's init")
    func identity() async throws {
        let report = try await isolated("hostname; id -u; id -g; grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status | awk '{print $2}' | sort -u; echo $$; cat /proc/1/cmdline | tr '\\\\0' ' '")
        #expect(report.status == .ok, "\(report.message) \(report.stderr?.text ?? "")")
        let lines = report.stdout?.text?.split(separator: "\n").map(String.init) ?? []
        #expect(lines.count >= 5, "\(lines)")
        #expect(lines.first == "corral")
        #expect(lines.dropFirst().prefix(2) == ["65534", "65534"])
        #expect(lines.dropFirst(3).first == "0000000000000000")
        #expect(lines.dropFirst(4).first == "2")
    }

    @Test("no host process is visible in /proc")
    func processes() async throws {
        let report = try await isolated("ls /proc | grep -c '^[0-9]'; test -e /proc/\(getpid()) && echo visible || echo hidden")
        let lines = report.stdout?.text?.split(separator: "\n").map(String.init) ?? []
        #expect(Int(lines.first ?? "") ?? 99 < 10, "\(lines)")
        #expect(lines.last == "hidden")
    }

    @Test("no TCP connection to a port on the host's loopback; with --network host there is")
    func network() async throws {
        let listener = try LoopbackListener()
        defer { withExtendedLifetime(listener) {} }
        let port = listener.port
        let connect = "python3 -c \"import socket; socket.create_connection(('127.0.0.1', \(port)), timeout=2); print('connected')\""
        let resolve = try await self.isolated("getent hosts example.com || echo unresolved")
        #expect(resolve.stdout?.text == "unresolved\n")
        let isolated = try await self.isolated(connect)
        #expect(isolated.status == .nonzeroExit)
        #expect(isolated.stdout?.text?.contains("connected") != true)
        let host = try await self.isolated(connect, network: .host)
        #expect(host.status == .ok, "\(host.stderr?.text ?? "")")
        #expect(host.stdout?.text == "connected\n")
    }

    @Test("kill(-1) inside reaches nothing outside")
    func killAll() async throws {
        let sleeper = try Spawn.start("/bin/sleep", ["30"])
        defer { kill(sleeper.pid, SIGKILL); _ = sleeper.wait() }
        let report = try await isolated("kill -9 -1; echo survived")
        #expect(Leftovers.isRunning(sleeper.pid))
        #expect(report.status == .ok || report.status == .signaled)
    }

    @Test("it cannot leave its cgroup, raise an rlimit, or read /etc/shadow")
    func privileges() async throws {
        let report = try await isolated("""
        for f in /sys/fs/cgroup/pids/cgroup.procs /sys/fs/cgroup/unified/cgroup.procs; do (echo 0 > $f) 2>/dev/null && echo "joined $f"; done
        ulimit -n 64; (ulimit -n 128) 2>/dev/null && echo raised
        cat /etc/shadow >/dev/null 2>&1 && echo read-shadow
        echo done
        """)
        #expect(report.stdout?.text == "done\n", "\(report.stdout?.text ?? "")")
    }

    @Test("10,000 zombies of an orphaning parent end cleanly under --processes 64", .enabled(if: CgroupCheck.hasV1 || CgroupCheck.hasV2Controllers))
    func zombies() async throws {
        let fixture = try Fixtures.path("zombies")
        let directory = URL(fileURLWithPath: fixture).deletingLastPathComponent().path
        let report = try await run(Job(arguments: [fixture, "10000"], limits: Limits(wallTime: .seconds(60), processes: 64),
                                       isolation: Isolation(binds: [Isolation.Bind(source: directory)])))
        #expect(report.status == .ok, "\(report.message)")
        #expect(report.exitCode == 0)
    }

    @Test("exit codes, signals and exec failures come through the init")
    func endings() async throws {
        #expect(try await isolated("exit 7").exitCode == 7)
        let signaled = try await isolated("kill -SEGV $$")
        #expect(signaled.status == .signaled)
        #expect(signaled.signalName == "SIGSEGV")
        let missing = try await run(Job(arguments: ["/nonexistent/program"], isolation: Isolation()))
        #expect(missing.status == .setupError)
        #expect(missing.commandExitCode == 127)
        // A program that exists on the host but not in the sandbox: the message says why.
        let hostOnly = try await run(Job(arguments: [try Fixtures.path("exit_code"), "0"], isolation: Isolation()))
        #expect(hostOnly.status == .setupError)
        #expect(hostOnly.message.hasPrefix("exec \(try Fixtures.path("exit_code")): No such file or directory (in the sandbox the host's files are only"),
                "\(hostOnly.message)")
        let leftovers = try await isolated("sleep 30 & sleep 30 & true")
        #expect(leftovers.status == .ok)
        #expect(leftovers.leftovers == 2)
        #expect(leftovers.wallTime < 5)
    }

    // MARK: The minimal filesystem

    @Test("only the listed paths of the host are there, read-only; /box and /tmp are writable")
    func filesystem() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        chmod(directory.path, 0o777)
        let secret = TemporaryDirectory()
        defer { secret.remove() }
        try "secret".write(toFile: secret.file("secret.txt"), atomically: true, encoding: .utf8)
        let report = try await run(Job(
            arguments: ["/bin/sh", "-c", """
            ls /; cat \(secret.file("secret.txt")) 2>/dev/null && echo read-host-file
            cat /etc/shadow 2>/dev/null && echo read-shadow
            for d in / /usr /etc /dev /proc; do (echo x > $d/corral-probe) 2>/dev/null && echo "wrote $d"; done
            echo in-box > /box/made-inside && echo wrote-box; echo t > /tmp/t && echo wrote-tmp; pwd
            """],
            workingDirectory: directory.path, standardOutput: .capture(max: 1 << 16), standardError: .null,
            limits: Limits(wallTime: .seconds(20)), isolation: Isolation()
        ))
        #expect(report.status == .ok, "\(report.message)")
        let lines = report.stdout?.text?.split(separator: "\n").map(String.init) ?? []
        #expect(Set(lines).isSuperset(of: ["box", "dev", "etc", "proc", "tmp", "usr", "wrote-box", "wrote-tmp", "/box"]), "\(lines)")
        #expect(!lines.contains("read-host-file"))
        #expect(!lines.contains("read-shadow"))
        #expect(!lines.contains { $0.hasPrefix("wrote /") }, "\(lines)")
        #expect(!lines.contains("root"))
        #expect(!lines.contains("home"))
        // /box is the working directory.
        #expect((try? String(contentsOfFile: directory.file("made-inside"), encoding: .utf8)) == "in-box\n")
    }

    @Test("an isolated process of a job works in /box: its files, its stream files, what it leaves for collect")
    func jobInBox() async throws {
        let spec = try JobSpec.parse(Data("""
            {"processes": [{"args": ["/bin/sh", "-c", "pwd; id -u; cat in/data; echo made > out.txt; echo to-err >&2; ln -s /etc/passwd stolen"],
                            "isolate": true, "stdout": "log.txt", "stderr": "log.txt"}],
             "files": [{"path": "in/data", "content": "given"}],
             "collect": [{"path": "log.txt"}, {"path": "out.txt"}, {"path": "stolen"}]}
            """.utf8))
        let report = try await JobRunner().run(spec)
        #expect(report.status == .ok, "\(report.processes.first?.report.message ?? "")")
        #expect(report.processes.first?.report.isolated == true)
        #expect(report.files.map { $0.content?.text } == ["/box\n65534\ngivento-err\n", "made\n", nil])
        #expect(report.files.last?.error?.contains("symbolic link") == true)
    }

    @Test("another process of the job and Corral's init are out of reach: not in /proc, memory not readable, no ptrace")
    func othersOutOfReach() async throws {
        // The interactor waits on the pipe while the solution looks around for it.
        let probe = """
        import ctypes, os, sys
        seen = [open('/proc/%s/cmdline' % p, 'rb').read() for p in os.listdir('/proc') if p.isdigit()]
        print('interactor visible' if any(b'waiting-' + b'interactor' in c for c in seen) else 'interactor hidden', file=sys.stderr)
        for path in ['/proc/1/mem', '/proc/1/environ']:
            try:
                open(path, 'rb').read(1); print(path, 'open', file=sys.stderr)
            except PermissionError:
                print(path, 'denied', file=sys.stderr)
        print('go', flush=True)
        ctypes.CDLL(None).syscall(101, 16, 1, 0, 0)
        """
        let spec = try JobSpec.parse(Data("""
            {"processes": [
              {"name": "interactor", "args": ["/bin/sh", "-c", "read line; echo got-$line", "waiting-interactor"], "isolate": true,
               "stdin": {"pipe": "ask"}},
              {"name": "solution", "args": ["python3", "-c", \(try jsonString(probe))], "isolate": true, "stdout": {"pipe": "ask"}}],
             "pipes": ["ask"]}
            """.utf8))
        let report = try await JobRunner().run(spec)
        let (interactor, solution) = (report.processes[0].report, report.processes[1].report)
        #expect(interactor.status == .ok)
        #expect(interactor.stdout?.text == "got-go\n")
        #expect(solution.stderr?.text == "interactor hidden\n/proc/1/mem denied\n/proc/1/environ denied\n")
        // ptrace(PTRACE_ATTACH, 1): the filter kills the caller before the kernel even asks.
        #expect(solution.status == .syscallViolation)
    }

    @Test("a process's dir must be inside its working directory, isolated or not")
    func jobDirectory() throws {
        for isolate in [true, false] {
            for (dir, reason) in [("/", "must be relative to the working directory, not absolute"), ("/etc", "must be relative to the working directory, not absolute"),
                                  ("../x", "must not contain \"..\""), ("a/../../b", "must not contain \"..\"")] {
                let text = #"{"processes": [{"args": ["/bin/true"], "isolate": \#(isolate), "dir": "\#(dir)"}]}"#
                #expect(throws: SpecError("processes[0].dir", reason)) { try JobSpec.parse(Data(text.utf8)) }
            }
        }
    }

    @Test("gcc compiles and runs a C program inside; python3 (multiprocessing too: /dev/shm) and a dynamically linked /usr/bin program work")
    func runtimes() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        chmod(directory.path, 0o777)
        try "#include <stdio.h>\nint main(void) { puts(\"compiled inside\"); return 0; }\n".write(toFile: directory.file("a.c"), atomically: true, encoding: .utf8)
        let report = try await run(Job(
            arguments: ["/bin/sh", "-c", "gcc -O1 -o a a.c && ./a && python3 -c 'print(6 * 7)' && /usr/bin/basename /dynamically/linked"
                        + " && python3 -c 'import multiprocessing as m; print(sum(m.Pool(2).map(abs, [-1, -2])))'"],
            workingDirectory: directory.path, standardOutput: .capture(max: 1 << 16), standardError: .capture(max: 1 << 16),
            limits: Limits(wallTime: .seconds(60)), isolation: Isolation()
        ))
        #expect(report.status == .ok, "\(report.message): \(report.stderr?.text ?? "")")
        #expect(report.stdout?.text == "compiled inside\n42\nlinked\n3\n")
    }

    @Test("javac compiles and java runs a class inside; node runs a script",
          .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/javac") && FileManager.default.isExecutableFile(atPath: "/usr/bin/node"),
                   "needs a JDK and Node.js installed (/usr/bin/javac, /usr/bin/node)"))
    func javaAndNode() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        chmod(directory.path, 0o777)
        try "public class H { public static void main(String[] a) { System.out.println(\"java \" + (6 * 7)); } }\n"
            .write(toFile: directory.file("H.java"), atomically: true, encoding: .utf8)
        let report = try await run(Job(
            arguments: ["/bin/sh", "-c", "javac H.java && java H && node -e 'console.log(\"node\", 6 * 7)'"],
            workingDirectory: directory.path, standardOutput: .capture(max: 1 << 16), standardError: .capture(max: 1 << 16),
            limits: Limits(wallTime: .seconds(60)), isolation: Isolation()
        ))
        #expect(report.status == .ok, "\(report.message): \(report.stderr?.text ?? "")")
        #expect(report.stdout?.text == "java 42\nnode 42\n")
    }

    @Test("--bind and --tmpfs add mounts, read-only unless asked")
    func extraMounts() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        try "shared".write(toFile: directory.file("data.txt"), atomically: true, encoding: .utf8)
        chmod(directory.path, 0o777)
        let isolation = Isolation(binds: [Isolation.Bind(source: directory.path, target: "/data"),
                                          Isolation.Bind(source: directory.path, target: "/data-rw", writable: true)],
                                  tmpfs: [Isolation.Tmpfs(target: "/scratch", size: 1 << 20)])
        let report = try await run(Job(
            arguments: ["/bin/sh", "-c", "cat /data/data.txt; echo; (echo x > /data/new) 2>/dev/null || echo ro; echo y > /data-rw/new && echo rw; echo z > /scratch/z && echo scratch"],
            standardOutput: .capture(max: 1 << 16), standardError: .null, isolation: isolation
        ))
        #expect(report.stdout?.text == "shared\nro\nrw\nscratch\n")
        #expect((try? String(contentsOfFile: directory.file("new"), encoding: .utf8)) == "y\n")
    }
}
}
