import Corral
import CorralTestSupport
import Foundation
import Testing

/// With one user for every run (nobody), runs could signal and read each other and share
/// per-user limits (one sandbox used up every inotify instance). A range gives each run a
/// uid of its own.
extension SecurityTests {
@Suite("A uid per run", .enabled(if: isRoot, Comment(rawValue: needsRoot)))
struct UserRangeTests {
    static let range: ClosedRange<UInt32> = 60_100...60_103

    @Test("runs going on at once get different uids from the range, and a uid is free again after its run")
    func concurrentRunsGetTheirOwnUids() async throws {
        let runner = Runner(configuration: RunnerConfiguration(userRange: Self.range))
        let job = Job(arguments: ["/bin/sh", "-c", "id -u; id -g; sleep 0.5"], standardOutput: .capture(max: 64), limits: Limits(wallTime: .seconds(10)))
        async let first = runner.run(job)
        async let second = runner.run(job)
        let uids = try await [first, second].map { $0.stdout?.text ?? "" }
        #expect(Set(uids).count == 2, "\(uids)")
        for text in uids {
            let ids = text.split(separator: "\n").compactMap { UInt32($0) }
            #expect(ids.count == 2 && ids[0] == ids[1] && Self.range.contains(ids[0]), "\(text)")
        }
        let again = try await runner.run(job)
        #expect(again.stdout?.text?.hasPrefix("\(Self.range.lowerBound)\n") == true, "\(again.stdout?.text ?? "")")
    }

    @Test("non-isolated processes of one job with a range: the solution cannot read the interactor's files")
    func plainJobIsSeparated() async throws {
        let spec = try JobSpec.parse(Data("""
            {"processes": [
              {"name": "solution", "args": ["/bin/sh", "-c", "cat ../interactor/answer 2>&1; ls ../interactor 2>&1; kill -0 $(cat ../interactor/pid 2>/dev/null || echo 1) 2>&1; true"]},
              {"name": "interactor", "args": ["/bin/sh", "-c", "echo $$ > pid; sleep 0.5"]}],
             "files": [{"path": "answer", "content": "42", "process": "interactor"}]}
            """.utf8))
        let report = try await JobRunner(runner: Runner(configuration: RunnerConfiguration(userRange: Self.range))).run(spec)
        let text = report.process("solution")?.stdout?.text ?? ""
        #expect(!text.contains("42"), "\(text)")
        #expect(text.contains("Permission denied"), "\(text)")
    }

    @Test("corral run --user-range gives the run a uid of the range")
    func commandLine() throws {
        let result = try Spawn.run(corralBinary, ["run", "--quiet", "--user-range", "60100-60101", "--", "/usr/bin/id", "-u"])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput == "60100\n")
        let refused = try Spawn.run(corralBinary, ["run", "--user-range", "0-10", "--", "/bin/true"])
        #expect(refused.status == 125)
    }
}
}
