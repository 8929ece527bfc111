import Corral
import CorralTestSupport
import Foundation
import Testing

/// Library runs are serialized across suites: see ``IntegrationTests``.
extension IntegrationTests {
@Suite("Every process of the run")
struct ProcessTrackingTests {
    @Test("20 sleeping children of a parent that exits: ok at once, 20 leftovers killed")
    func forker() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let pidFile = directory.file("pids")
        let started = Date()
        let report = try await Runner().run(try job("forker", pidFile, "20"))
        let children = Leftovers.pids(inFile: pidFile)
        #expect(children.count == 20)
        #expect(report.status == .ok)
        #expect(report.leftovers == 20)
        #expect(report.processes == 21)
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(report.message.hasSuffix("; 20 leftover processes killed"))
        #expect(Leftovers.survivors(of: report, extra: children).isEmpty)
        let killed = report.events.filter { $0.event == .signaled && $0.signal == SIGKILL }.map(\.pid)
        #expect(Set(killed) == Set(children))
    }

    @Test("a grandchild that calls setsid and outlives its ancestors is killed", arguments: ["sleep", "daemon"])
    func escaper(mode: String) async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let pidFile = directory.file("escaped")
        let report = try await Runner().run(try job("escaper", pidFile, mode, limits: Limits(wallTime: .seconds(10))))
        let escaped = Leftovers.pids(inFile: pidFile)
        #expect(escaped.count == 1)
        #expect(report.status == .ok)
        #expect(report.leftovers >= 1)
        #expect(report.wallTime < 5)
        #expect(Leftovers.survivors(of: report, extra: escaped).isEmpty, "escaped \(escaped) still alive")
    }

    @Test("cancelling the task kills the run and still reports")
    func cancellation() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let pidFile = directory.file("pid")
        let path = try Fixtures.path("pid_sleeper")
        let task = Task { try await Runner().run(Job(arguments: [path, pidFile])) }
        try await Task.sleep(for: .milliseconds(300))
        task.cancel()
        let report = try await task.value
        #expect(report.status == .cancelled)
        #expect(report.commandExitCode == 130)
        #expect(report.wallTime < 2)
        #expect(Leftovers.survivors(of: report, extra: Leftovers.pids(inFile: pidFile)).isEmpty)
    }

    @Test("a task cancelled before the run starts never starts it")
    func cancelledBeforeStart() async throws {
        let task = Task {
            while !Task.isCancelled { await Task.yield() }
            return try await Runner().run(Job(arguments: ["sleep", "30"]))
        }
        task.cancel()
        let report = try await task.value
        #expect(report.status == .cancelled)
        #expect(report.wallTime < 1)
    }
}
}
