import Corral
import CorralTestSupport
import Foundation
import Synchronization
import Testing

/// `--max-disk` (``JobRunner/workdirLimit``) is "what a job may keep in its working
/// directory": a tmpfs of that size, whose pages stay in memory. A job of steps keeps every
/// step's directory until the job ends (later steps take files from them), each a tmpfs of
/// that size: a client (or the programs of a job of many steps) fills each in turn and the
/// job keeps steps × the bound in memory at once, past every per-run limit (a run's memory
/// cgroup is gone when its step ends; the pages it left in the tmpfs stay).
extension SecurityTests {
@Suite("Disk kept by a job of steps")
struct StepDiskAttackTests {
    final class Done: Sendable { let flag = Atomic<Bool>(false) }

    /// The bytes in use in this process's job tmpfs mounts now.
    static func keptBytes() -> UInt64 {
        jobMounts { UInt64($0.f_blocks - $0.f_bfree) * UInt64($0.f_frsize) }
    }

    /// `used` summed over this process's job tmpfs mounts, from each one's statvfs.
    static func jobMounts(_ used: (statvfs) -> UInt64) -> UInt64 {
        let own = "/corral-job-\(getpid())-"
        let mounts = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        var total: UInt64 = 0
        for line in mounts.split(separator: "\n") where line.contains(" - tmpfs ") {
            let fields = line.split(separator: " ")
            guard fields.count > 4, fields[4].contains(own) else { continue }
            var info = statvfs()
            guard statvfs(String(fields[4]), &info) == 0 else { continue }
            total += used(info)
        }
        return total
    }

    @Test("a job of steps keeps at most its --max-disk in its working directories, however many steps fill theirs",
          .enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func stepsKeepOneBound() async throws {
        let limit: UInt64 = 8 << 20
        // Each step tries to keep 3 MiB; the steps share the bound, so the third and fourth
        // find no room (and go on: continueOnFailure), while the job is held open.
        let fill = (1...4).map { index in
            #"{"name": "fill\#(index)", "continueOnFailure": true, "processes": [{"args": \#(shell("dd if=/dev/zero of=f bs=1M count=3 status=none")), "isolate": true}]}"#
        }.joined(separator: ", ")
        let json = """
        {"steps": [\(fill), {"name": "hold", "processes": [{"args": ["/bin/sleep", "1.5"], "isolate": true}]}]}
        """
        guard case .steps(let spec) = try JobDocument.parse(Data(json.utf8)) else { throw FixtureError("not a job of steps") }
        let runner = StepsRunner(jobs: JobRunner(workdirLimit: limit))
        let done = Done()
        let job = Task {
            defer { done.flag.store(true, ordering: .sequentiallyConsistent) }
            return try await runner.run(spec)
        }
        var most: UInt64 = 0
        while !done.flag.load(ordering: .sequentiallyConsistent) {
            most = max(most, Self.keptBytes())
            if most > 3 * limit { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let report = try await job.value
        #expect(most <= limit + (1 << 20), "a job with a bound of \(limit) bytes kept \(most) bytes at once")
        let statuses = report.steps.map { "\($0.name): \($0.status)" }
        #expect(report.steps.count == 5, "\(statuses)")
        let fitted = report.steps.prefix(2).allSatisfy(\.ok)
        let refused = report.steps.dropFirst(2).prefix(2).allSatisfy { !$0.ok }
        #expect(fitted, "the first two steps fit: \(statuses)")
        #expect(refused, "the third and fourth find no room: \(statuses)")
        let said = report.steps.dropFirst(2).first?.processes.first?.report.stderr?.text ?? ""
        #expect(said.contains("No space left on device"), "\(said)")
        #expect(report.steps.last?.ok == true, "\(statuses)")
    }
}
}
