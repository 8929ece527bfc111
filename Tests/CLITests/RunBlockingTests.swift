import CorralTestSupport
import Foundation
import Testing

/// `corral run` of a plain line runs on its own thread (no task, no Dispatch): SIGINT,
/// SIGTERM and SIGHUP are blocked in Corral and read from a signalfd. These check what that
/// must not change: the program starts with no signal blocked, each of the three signals
/// still cancels the run, and Corral starts no thread beyond its reaper.
@Suite("corral run on the calling thread")
struct RunBlockingTests {
    @Test("the program starts with no signal blocked", arguments: [false, true])
    func programMaskEmpty(isolate: Bool) throws {
        if isolate && geteuid() != 0 {
            print("skipped: --isolate needs root here")
            return
        }
        let result = try Spawn.run(corralPath, ["run", "--quiet"] + (isolate ? ["--isolate"] : [])
                                        + ["--", "/bin/grep", "^SigBlk:", "/proc/self/status"])
        #expect(result.status == 0, "stderr: \(result.standardError)")
        #expect(result.standardOutput == "SigBlk:\t0000000000000000\n")
    }

    @Test("SIGTERM and SIGHUP cancel the run too: killed, reaped, reported", arguments: [SIGTERM, SIGHUP])
    func cancelledBy(signalNumber: Int32) throws {
        try expectCancelledBySignal(signalNumber, arguments: ["--containment", "process-group"])
    }

    @Test("a plain run starts one thread of Corral's own (the reaper), not a concurrency pool")
    func threads() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let pidFile = directory.file("pid")
        let sleeper = try Fixtures.path("pid_sleeper")
        let started = try Spawn.start(corralPath, ["run", "--quiet", "--containment", "process-group", "--", sleeper, pidFile])
        var waited = 0
        while Leftovers.pids(inFile: pidFile).isEmpty && waited < 250 {
            usleep(20_000)
            waited += 1
        }
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(started.pid)/task")) ?? []
        for pid in Leftovers.pids(inFile: pidFile) { kill(pid, SIGKILL) }
        _ = started.wait()
        #expect(tasks.count == 2, "threads of corral: \(tasks.count)")
    }
}
