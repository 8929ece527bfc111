import Corral
import CorralTestSupport
import Foundation
import Testing

/// Library runs are serialized across suites: see ``IntegrationTests``.
extension IntegrationTests {
@Suite("Programs that cannot start")
struct SetupErrorTests {
    @Test("a program missing from PATH is found missing before any fork")
    func missingInPath() async throws {
        let report = try await run(Job(arguments: ["corral-no-such-program"]))
        #expect(report.status == .setupError)
        #expect(report.error?.stage == "resolve")
        #expect(report.error?.errnoName == "ENOENT")
        #expect(report.commandExitCode == 127)
        #expect(report.exitCode == nil)
        #expect(report.pid == nil)
    }

    @Test("a missing path fails at exec, and is never mistaken for exit code 127")
    func missingPath() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let report = try await run(Job(arguments: ["./a.out"], workingDirectory: directory.path))
        #expect(report.status == .setupError)
        #expect(report.message == "exec ./a.out: No such file or directory")
        #expect(report.error?.stage == "exec")
        #expect(report.exitCode == nil)
        #expect(report.commandExitCode == 127)
        #expect(report.events.isEmpty)
    }

    @Test("a file without execute permission")
    func notExecutable() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("script")
        try "#!/bin/sh\nexit 0\n".write(toFile: path, atomically: true, encoding: .utf8)
        let report = try await run(Job(arguments: [path]))
        #expect(report.status == .setupError)
        #expect(report.error?.errnoName == "EACCES")
        #expect(report.message == "exec \(path): Permission denied")
        #expect(report.commandExitCode == 126)
    }

    @Test("a directory")
    func directory() async throws {
        let report = try await run(Job(arguments: ["/tmp"]))
        #expect(report.status == .setupError)
        #expect(report.message.contains("is a directory"))
        #expect(report.commandExitCode == 126)
    }

    @Test("a working directory that does not exist")
    func badDirectory() async throws {
        let report = try await run(Job(arguments: ["/bin/true"], workingDirectory: "/nonexistent/corral"))
        #expect(report.status == .setupError)
        #expect(report.error?.stage == "chdir")
        #expect(report.message == "chdir /nonexistent/corral: No such file or directory")
        #expect(report.commandExitCode == 125)
    }

    @Test("an rlimit above Corral's own hard limit is refused by the kernel and said clearly")
    func rlimitAboveHard() async throws {
        var current = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &current)
        try #require(current.rlim_max < 1 << 40, "RLIMIT_NOFILE hard limit is unlimited here")
        let report = try await run(Job(arguments: ["/bin/true"], limits: Limits(openFiles: UInt64(current.rlim_max) + 1)))
        #expect(report.status == .setupError)
        #expect(report.error?.stage == "rlimit")
        #expect(report.message.hasPrefix("setrlimit RLIMIT_NOFILE: Operation not permitted"))
    }

    @Test("an invalid job throws before anything runs", arguments: [
        Job(arguments: []),
        Job(arguments: [""]),
        Job(arguments: ["/bin/true"], limits: Limits(cpuTime: .zero)),
        Job(arguments: ["/bin/true"], limits: Limits(memory: 0)),
        Job(arguments: ["/bin/true"], environment: ["A=B": "c"]),
    ])
    func invalidJobs(job: Job) async throws {
        await #expect(throws: CorralError.self) { try await Runner().run(job) }
    }
}
}
