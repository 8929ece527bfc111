import CorralTestSupport
import Foundation
import Synchronization
import Testing

/// A queued job's report is written while its working directory (a tmpfs, whose unmount
/// waits for an RCU grace period) is still being removed: the removal must still happen,
/// before the lane's next job and before the server stops.
@Suite("Queued jobs' working directories", .serialized)
struct JobDirectoryTests {
    static func mountedJobDirectories(_ server: ServeProcess) -> Int {
        let mountinfo = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        return mountinfo.split(separator: "\n").filter { $0.contains(server.tmp.path + "/corral-job-") }.count
    }

    static func jobDirectories(_ server: ServeProcess) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: server.tmp.path)) ?? []).filter { $0.hasPrefix("corral-job-") }
    }

    /// A server whose jobs get a tmpfs of 8 MiB, two at once.
    static func server() throws -> ServeProcess {
        try ServeProcess.start(["--parallelism", "2", "--max-disk", "8M", "--log-level", "warning"])
    }

    /// Each removal follows its report by a grace period or so: within 10 s, nothing is left.
    static func expectNothingLeft(_ server: ServeProcess, _ when: String) {
        let deadline = Date().addingTimeInterval(10)
        while (mountedJobDirectories(server) > 0 || !jobDirectories(server).isEmpty) && Date() < deadline { usleep(20_000) }
        #expect(mountedJobDirectories(server) == 0, "job tmpfs still mounted \(when)")
        #expect(jobDirectories(server).isEmpty, "job directories left \(when): \(jobDirectories(server))")
    }

    /// SIGTERM right after a job ended: exit 0, and the exit waited for the job's removal.
    static func expectCleanStop(_ server: ServeProcess) {
        let path = server.tmp.path
        let result = server.stop()
        #expect(result.status == 0, "\(result.standardError)")
        let mountinfo = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        #expect(!mountinfo.contains(path), "a job tmpfs of the stopped server is still mounted")
    }

    @Test("tmpfs working directories of done jobs are unmounted and removed, while running and after a stop",
          .enabled(if: geteuid() == 0, "a size-limited working directory (tmpfs) needs root"))
    func removedAfterReport() throws {
        let server = try Self.server()
        var stopped = false
        defer { if !stopped { server.stop() } }
        let jobs = (1...12).map { JobsRouteTests.job("echo \($0) > out; cat out") }
        let batch = try JobsRouteTests.call(server, "POST", "/v1/jobs/batch", #"{"jobs": [\#(jobs.joined(separator: ", "))]}"#)
        let ids = try #require(batch.json["ids"] as? [String], "\(batch.text)")
        for (index, id) in ids.enumerated() {
            let done = try JobsRouteTests.wait(server, id)
            #expect(done.json["state"] as? String == "done", "\(done.text)")
            #expect(JobsRouteTests.stdout(done) == "\(index + 1)\n", "\(done.text)")
        }
        Self.expectNothingLeft(server, "after every report was written")

        // Jobs done just before a SIGTERM: the drain waits for their removal.
        let late = try JobsRouteTests.call(server, "POST", "/v1/jobs/batch", #"{"jobs": [\#(jobs.prefix(4).joined(separator: ", "))]}"#)
        let lateIds = try #require(late.json["ids"] as? [String], "\(late.text)")
        _ = try JobsRouteTests.wait(server, lateIds.last!)
        stopped = true
        Self.expectCleanStop(server)
    }
}

/// The same for `POST /v1/run`, which answers while the directory is removed.
@Suite("Answered runs' working directories", .serialized)
struct RunDirectoryTests {
    @Test("POST /v1/run: each answered job's tmpfs goes soon after its answer, and all before a SIGTERM's exit",
          .enabled(if: geteuid() == 0, "a size-limited working directory (tmpfs) needs root"))
    func removedAfterAnswer() throws {
        let server = try JobDirectoryTests.server()
        var stopped = false
        defer { if !stopped { server.stop() } }
        let body = #"{"processes": [{"args": ["/bin/sh", "-c", "head -c 100000 /dev/zero > big; wc -c < big"]}]}"#
        // Two clients at once (threads: the calls block), as many jobs as the backlog's bound
        // several times over.
        let answers = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: 2) { _ in
            for _ in 0..<8 {
                let text: String
                if let answer = try? server.run(body) {
                    let process = (answer.json["processes"] as? [[String: Any]])?.first
                    let stdout = (process?["stdout"] as? [String: Any])?["text"] as? String
                    text = answer.status == 200 && stdout == "100000\n" ? "ok" : answer.text
                } else {
                    text = "no answer"
                }
                answers.withLock { $0.append(text) }
            }
        }
        let got = answers.withLock { $0 }
        #expect(got.count == 16 && got.allSatisfy { $0 == "ok" }, "\(got)")
        JobDirectoryTests.expectNothingLeft(server, "after every answer")
        // An answer, then a SIGTERM at once: the exit waits for the removal.
        _ = try server.run(body)
        stopped = true
        JobDirectoryTests.expectCleanStop(server)
    }
}
