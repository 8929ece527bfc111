import Corral
import CorralTestSupport
import Foundation
import Testing

/// The `corral` binary built beside the test bundle.
let corralPath: String = {
    let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent("corral").path
}()

func corral(_ arguments: String...) throws -> Spawn.Result {
    try Spawn.run(corralPath, arguments)
}

func decodeReport(_ path: String) throws -> [String: Any] {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
        throw FixtureError("the report is not a JSON object")
    }
    return object
}

/// What `--containment auto` gives on this host.
let expectedContainment: String = HostReport.inspect().cgroups.selected.rawValue

/// Starts `corral run ARGUMENTS --report FILE -- pid_sleeper PIDFILE`, sends Corral `signal`
/// once the sleeper runs, and expects what a cancelled run ends with: exit 130, a report
/// with status `cancelled`, and the sleeper dead (reaped, not left behind). The report, for
/// more checks.
@discardableResult
func expectCancelledBySignal(_ signal: Int32, arguments: [String] = [],
                             sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
    let directory = TemporaryDirectory()
    defer { directory.remove() }
    let reportPath = directory.file("report.json")
    let pidFile = directory.file("pid")
    let sleeper = try Fixtures.path("pid_sleeper")
    let started = try Spawn.start(corralPath, ["run"] + arguments + ["--report", reportPath, "--", sleeper, pidFile])
    var waited = 0
    while Leftovers.pids(inFile: pidFile).isEmpty && waited < 250 {
        usleep(20_000)
        waited += 1
    }
    kill(started.pid, signal)
    let result = started.wait()
    #expect(result.status == 130, "stderr: \(result.standardError)", sourceLocation: sourceLocation)
    let report = try decodeReport(reportPath)
    #expect(report["status"] as? String == "cancelled", sourceLocation: sourceLocation)
    let pids = Leftovers.pids(inFile: pidFile)
    #expect(pids.count == 1, sourceLocation: sourceLocation)
    for pid in pids { #expect(!Leftovers.isAlive(pid), sourceLocation: sourceLocation) }
    return report
}
