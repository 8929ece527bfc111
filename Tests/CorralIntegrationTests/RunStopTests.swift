import Corral
import CorralTestSupport
import Foundation
import Testing

extension IntegrationTests {
@Suite("RunStop")
struct RunStopTests {
    @Test("stop() ends a running job's processes with status cancelled, from outside the task")
    func stopsRunning() async throws {
        let stop = RunStop()
        let spec = JobSpec(processes: [ProcessSpec(name: "a", args: ["/bin/sleep", "30"]), ProcessSpec(name: "b", args: ["/bin/sleep", "30"])])
        let started = Date()
        async let report = JobRunner().run(spec, stop: stop)
        try await Task.sleep(for: .milliseconds(200))
        stop.stop()
        let ended = try await report
        #expect(ended.processes.map(\.report.status) == [.cancelled, .cancelled])
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(stop.isStopped)
    }

    @Test("a run started with a stopped RunStop ends at once as cancelled")
    func stoppedBefore() async throws {
        let stop = RunStop()
        stop.stop()
        let report = try await Runner().run(Job(arguments: ["/bin/sleep", "30"]), stop: stop)
        #expect(report.status == .cancelled)
        #expect(report.pid == nil || !Leftovers.isAlive(report.pid!))
    }

    @Test("stop() and task cancellation racing a run's start and end: every run still reports, cancelled or ok, and nothing is left")
    func racing() async throws {
        let marker = "63.\(getpid() % 1000)"
        for round in 0..<150 {
            let stop = RunStop()
            let job = Job(arguments: ["/bin/sh", "-c", round % 3 == 0 ? "exit 0" : "sleep \(marker)"])
            let running = Task { try await Runner().run(job, stop: stop) }
            // From no delay at all to well after the start, some rounds by cancelling the task.
            if round % 5 > 0 { try await Task.sleep(for: .microseconds(round * 20)) }
            if round % 2 == 0 { stop.stop() } else { running.cancel() }
            let report = try await running.value
            #expect(report.status == .cancelled || (round % 3 == 0 && report.status == .ok), "round \(round): \(report.status)")
            // Stopping again after the end does nothing.
            stop.stop()
        }
        #expect(Leftovers.sleepers(marker) == 0)
    }
}
}

extension IntegrationTests.RunStopTests {
    @Test("an isolated run stopped while its init is still setting up ends as cancelled, nothing left",
          .enabled(if: geteuid() == 0, "isolation needs root"))
    func stoppedDuringSetup() async throws {
        for delay in [0, 1, 2, 5] {
            let stop = RunStop()
            let marker = "59.\(getpid() % 1000)\(delay)"
            async let report = Runner().run(Job(arguments: ["/bin/sleep", marker], isolation: Isolation()), stop: stop)
            try await Task.sleep(for: .milliseconds(delay))
            stop.stop()
            let ended = try await report
            #expect(ended.status == .cancelled, "after \(delay) ms: \(ended.message)")
            #expect(Leftovers.sleepers(marker) == 0)
        }
    }

    @Test("isolated runs at once each set up and end ok", .enabled(if: geteuid() == 0, "isolation needs root"))
    func concurrentSetups() async throws {
        let statuses = await withTaskGroup(of: RunStatus.self) { group in
            for index in 0..<12 {
                group.addTask {
                    let job = Job(arguments: ["/bin/sh", "-c", "test \"$(hostname)\" = corral && exit \(index % 3)"], isolation: Isolation())
                    return (try? await Runner().run(job).status) ?? .setupError
                }
            }
            var all: [RunStatus] = []
            for await status in group { all.append(status) }
            return all
        }
        #expect(statuses.filter { $0 == .ok }.count == 4)
        #expect(statuses.filter { $0 == .nonzeroExit }.count == 8)
    }
}
