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
}
}
