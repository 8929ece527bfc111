import Corral
import CorralTestSupport
import Foundation
import Testing

private let root = geteuid() == 0
private let needsRoot = "isolation needs root (rootless isolation is not implemented yet)"

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
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try #require(withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } } == 0)
        try #require(listen(listener, 16) == 0)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        let port = UInt16(bigEndian: address.sin_port)
        let connect = "python3 -c \"import socket; socket.create_connection(('127.0.0.1', \(port)), timeout=2); print('connected')\""
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
        let report = try await run(Job(arguments: [try Fixtures.path("zombies"), "10000"],
                                       limits: Limits(wallTime: .seconds(60), processes: 64), isolation: Isolation()))
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
        let leftovers = try await isolated("sleep 30 & sleep 30 & true")
        #expect(leftovers.status == .ok)
        #expect(leftovers.leftovers == 2)
        #expect(leftovers.wallTime < 5)
    }
}
}
