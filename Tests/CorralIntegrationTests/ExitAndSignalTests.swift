import Corral
import CorralTestSupport
import Foundation
import Testing

/// Library runs are serialized across suites: see ``IntegrationTests``.
extension IntegrationTests {
@Suite("Exit codes and signals")
struct ExitAndSignalTests {
    @Test("exit codes are results, not errors", arguments: [(0, RunStatus.ok, 0), (3, .nonzeroExit, 3), (256, .ok, 0)])
    func exitCodes(code: Int, status: RunStatus, seen: Int32) async throws {
        let report = try await run(try job("exit_code", String(code)))
        #expect(report.status == status)
        #expect(report.exitCode == seen)
        #expect(report.signal == nil)
        #expect(report.commandExitCode == seen)
        #expect(report.processes == 1)
        #expect(report.leftovers == 0)
        #expect(report.events.count == 1)
        #expect(report.events.first?.event == .exited)
        #expect(report.events.first?.pid == report.pid)
    }

    @Test("a crash is the signal that ended it")
    func segfault() async throws {
        let report = try await run(try job("crash", "segv"))
        #expect(report.status == .signaled)
        #expect(report.signal == SIGSEGV)
        #expect(report.signalName == "SIGSEGV")
        #expect(report.exitCode == nil)
        #expect(report.commandExitCode == 128 + SIGSEGV)
        #expect(report.message.contains("SIGSEGV"))
    }

    @Test("abort is SIGABRT")
    func abort() async throws {
        let report = try await run(try job("crash", "abort"))
        #expect(report.status == .signaled)
        #expect(report.signalName == "SIGABRT")
    }

    @Test("stdout, stdin, environment and working directory reach the program")
    func plumbing() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        try "from stdin".write(toFile: directory.file("in.txt"), atomically: true, encoding: .utf8)
        let report = try await run(Job(
            arguments: ["sh", "-c", "cat; echo \" $GREETING $(pwd)\"; echo oops >&2"],
            environment: ["PATH": "/usr/bin:/bin", "GREETING": "hello"],
            workingDirectory: directory.path,
            standardInput: .file(directory.file("in.txt")),
            standardOutput: .file(directory.file("out.txt")),
            standardError: .file(directory.file("err.txt"))
        ))
        #expect(report.status == .ok)
        let output = try String(contentsOfFile: directory.file("out.txt"), encoding: .utf8)
        #expect(output == "from stdin hello \(directory.path)\n")
        #expect(try String(contentsOfFile: directory.file("err.txt"), encoding: .utf8) == "oops\n")
    }

    @Test("the environment is clean by default")
    func cleanEnvironment() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let report = try await run(Job(arguments: ["env"], standardOutput: .file(directory.file("env.txt"))))
        #expect(report.status == .ok)
        #expect(try String(contentsOfFile: directory.file("env.txt"), encoding: .utf8) == "PATH=/usr/local/bin:/usr/bin:/bin\n")
    }

    @Test("open-files and stack limits are the program's rlimits; core dumps are off")
    func rlimits() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let report = try await run(Job(
            arguments: ["sh", "-c", "ulimit -n; ulimit -s; ulimit -c"],
            standardOutput: .file(directory.file("limits.txt")),
            limits: Limits(openFiles: 17, stack: 4 << 20)
        ))
        #expect(report.status == .ok)
        #expect(try String(contentsOfFile: directory.file("limits.txt"), encoding: .utf8) == "17\n4096\n0\n")
    }

    @Test("many runs at once each get their own child's status")
    func concurrentRuns() async throws {
        let path = try Fixtures.path("exit_code")
        let codes = try await withThrowingTaskGroup(of: (Int32, Int32?).self) { group in
            for code in Int32(1)...12 {
                group.addTask {
                    let report = try await Runner().run(Job(arguments: [path, String(code)]))
                    return (code, report.exitCode)
                }
            }
            var seen: [(Int32, Int32?)] = []
            for try await pair in group { seen.append(pair) }
            return seen
        }
        #expect(codes.count == 12)
        for (expected, seen) in codes { #expect(seen == expected) }
    }
}
}
