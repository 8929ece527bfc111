import CorralQueue
import CorralTestSupport
import Foundation
import Testing

/// `--queue postgres://USER:PASSWORD@…` on the command line of `corral serve` and `corral
/// worker`: the processes run on that queue, yet the password is in no /proc/PID/cmdline
/// (readable by every process, and by the jobs of a worker without isolation), in no report and
/// in no log.
@Suite("--queue URL", .serialized, .enabled(if: TestPostgres.url != nil, TestPostgres.skipped))
struct QueueFlagTests {
    static func commandLine(_ pid: Int32) -> String {
        let data = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
        return String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
    }

    @Test("serve --queue URL and worker --queue=URL: the password is hidden from /proc/PID/cmdline, reports and logs; the queue works")
    func passwordHiddenFromCommandLine() async throws {
        try await TestPostgres.withDatabase { url in
            let password = try #require(URLComponents(string: url)?.password)
            try #require(password.count >= 8, "the test database has a password to hide")
            // Through `corral` (which execs corral-server with the same pid), as users start it;
            // a number and a URL for --queue at once. The test's own variable is emptied.
            let server = try ServeProcess.start(["--accept-only", "--queue", "5", "--queue", url, "--log-level", "debug"],
                                                environment: ["CORRAL_TEST_POSTGRES_URL": ""])
            let worker = try Spawn.start(corralBinary, ["worker", "--queue=\(url)", "--no-isolate", "--parallelism", "1", "--log-level", "debug"],
                                         environment: ["PATH=/usr/bin:/bin"])
            let deadline = Date().addingTimeInterval(30)
            while !worker.standardOutputSoFar.contains("worker ready") && Date() < deadline && Leftovers.isRunning(worker.pid) {
                usleep(10_000)
            }
            #expect(worker.standardOutputSoFar.contains("worker ready"), "the worker opened the queue from --queue=URL")
            let pids = [server.process.pid, worker.pid]
            for pid in pids {
                let shown = Self.commandLine(pid)
                #expect(shown.contains("--queue") && shown.contains("@127.0.0.1"), "the argument is still there (its password hidden): \(shown)")
                #expect(!shown.contains(password), "/proc/\(pid)/cmdline shows the queue's password")
                #expect(shown.contains(String(repeating: "x", count: password.count)), "the password's bytes are overwritten: \(shown)")
            }
            // The worker runs jobs without isolation: they read every process's command line.
            try expectJobsCannotRead(password, of: pids, through: server, jobs: 3)
            kill(worker.pid, SIGTERM)
            let workerResult = worker.wait(timeout: 30)
            let serverResult = server.stop()
            #expect(workerResult.status == 0 && serverResult.status == 0, "\(workerResult.standardError) \(serverResult.standardError)")
            for log in [workerResult.standardError, serverResult.standardError] {
                #expect(!log.isEmpty, "debug logs were written")
                #expect(!log.contains(password), "a log shows the queue's password")
            }
        }
    }

    @Test("--queue URL with --queue-file is refused; so is a --queue that is neither a number nor a postgres:// URL")
    func conflictsRefused() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let file = try WorkerProcess.urlFile("postgres://u:p@127.0.0.1:1/x", in: tmp)
        let both = try Spawn.run(corralBinary, ["worker", "--queue", "postgres://u:p@127.0.0.1:1/x", "--queue-file", file],
                                 environment: ["PATH=/usr/bin:/bin"])
        #expect(both.status != 0 && both.standardError.contains("give one"), "\(both.standardError)")
        let other = try Spawn.run(corralBinary, ["worker", "--queue", "mysql://u:p@127.0.0.1/x"], environment: ["PATH=/usr/bin:/bin"])
        #expect(other.status != 0 && other.standardError.contains("postgres://"), "\(other.standardError)")
        let notNumber = try Spawn.run(corralBinary, ["serve", "--port", "0", "--queue", "many"], environment: ["PATH=/usr/bin:/bin"])
        #expect(notNumber.status != 0 && notNumber.standardError.contains("--queue"), "\(notNumber.standardError)")
    }
}
