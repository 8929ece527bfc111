import Corral
import CorralTestSupport
import Foundation
import Testing

/// A report is held in the runner's memory (a server's) until it is answered. Each capture
/// and each collected file is bounded by its own `max` (a server's `--max-output`, 64 MiB),
/// but a client chose how many there were: the same sparse 64 MiB file (which costs the
/// program nothing) collected a thousand times in a 40 KB request, or a thousand tests each
/// keeping 64 MiB of stderr, was 64 GiB of the server's memory. A job's report holds at most
/// ``JobRunner/maxReportBytes`` of both together.
extension SecurityTests {
@Suite("What a job's report holds")
struct ReportBudgetAttackTests {
    static let budget = JobRunner.defaultMaxReportBytes

    @Test("many sparse files collected are read only up to the job's report budget")
    func collectedManyTimes() async throws {
        // One file named twice is refused now (``JobSpec/maxCollect``); six sparse files cost
        // the program no more.
        let entries = (0..<6).map { #"{"path": "f\#($0)", "max": "64M"}"# }.joined(separator: ", ")
        let json = #"{"processes": [{"args": \#(shell("truncate -s 64M f0 f1 f2 f3 f4 f5"))}], "collect": [\#(entries)]}"#
        let report = try await JobRunner(workdirLimit: 8 << 20).run(JobSpec.parse(Data(json.utf8)))
        #expect(report.status == .ok)
        let kept = report.files.reduce(0) { $0 + ($1.content?.bytes ?? 0) }
        #expect(kept > 0)
        #expect(UInt64(kept) <= Self.budget, "the report held \(kept) bytes of collected files, over \(Self.budget)")
        #expect(report.files.last?.content?.truncated == true)
    }

    @Test("the stderr of many tests is kept only up to the job's report budget")
    func stderrOfManyTests() async throws {
        let tests = (0..<10).map { _ in #"{"stdin": {"content": ""}}"# }.joined(separator: ", ")
        let json = """
        {"steps": [{"name": "run", "processes": [{"args": \(shell("dd if=/dev/zero bs=1M count=32 status=none >&2")),
                     "stderr": {"capture": {"max": "32M"}}}], "tests": [\(tests)]}]}
        """
        guard case .steps(let spec) = try JobDocument.parse(Data(json.utf8)) else { throw FixtureError("not a job of steps") }
        let report = try await StepsRunner().run(spec)
        let tested = report.steps.first?.tests ?? []
        #expect(tested.count == 10)
        #expect(tested.allSatisfy { $0.verdict == .accepted }, "\(tested.map(\.comment))")
        let kept = tested.reduce(0) { $0 + ($1.processes.first?.report.stderr?.bytes ?? 0) }
        #expect(kept > 0)
        #expect(UInt64(kept) <= Self.budget, "the report held \(kept) bytes of the tests' stderr, over \(Self.budget)")
        #expect(tested.last?.processes.first?.report.stderr?.truncated == true)
    }

    @Test("the comments of many tests (a custom checker's stderr, 4 KiB each) are kept only up to the job's report budget")
    func commentsOfManyTests() async throws {
        // A comment is a copy of the checker's stderr (cut to 4 KiB), whose capture the budget
        // charged, but not the copy: the report held up to twice its budget. Here a budget of
        // 64 KiB and 40 tests of 4 KiB each.
        let budget: UInt64 = 64 << 10
        let tests = (0..<40).map { _ in #"{"stdin": {"content": ""}, "answer": {"content": ""}}"# }.joined(separator: ", ")
        let json = """
        {"steps": [{"name": "run", "processes": [{"args": ["/bin/true"]}],
          "checker": {"type": "custom", "args": \(shell("printf %4096s '' | tr ' ' x >&2; exit 1"))},
          "tests": [\(tests)]}]}
        """
        guard case .steps(let spec) = try JobDocument.parse(Data(json.utf8)) else { throw FixtureError("not a job of steps") }
        let report = try await StepsRunner(jobs: JobRunner(maxReportBytes: budget)).run(spec)
        let tested = report.steps.first?.tests ?? []
        #expect(tested.count == 40)
        #expect(tested.allSatisfy { $0.verdict == .wrongAnswer }, "\(tested.map(\.comment))")
        #expect(tested.first?.comment == String(repeating: "x", count: 4096), "\(tested.first?.comment.prefix(80) ?? "no test")")
        let comments = tested.reduce(0) { $0 + $1.comment.utf8.count }
        let captured = tested.reduce(0) { $0 + ($1.checker?.stderr?.bytes ?? 0) }
        // The first 256 bytes of each comment are free (``ReportBudget/freeCommentBytes``).
        let bound = budget + 40 * 256
        #expect(UInt64(comments + captured) <= bound, "the report held \(comments) bytes of comments and \(captured) of checker stderr, over \(bound)")
        #expect(tested.last?.comment.isEmpty == true)
    }

    @Test("with the budget used up by captures, each test's own comment (where the output differs) is still there")
    func commentsOutliveTheBudget() async throws {
        let tests = (0..<3).map { _ in #"{"stdin": {"content": ""}, "answer": {"content": "right\n"}}"# }.joined(separator: ", ")
        let json = """
        {"steps": [{"name": "run", "processes": [{"args": \(shell("head -c 4096 /dev/zero >&2; echo wrong")),
                     "stderr": {"capture": {"max": "8K"}}}], "checker": "exact", "tests": [\(tests)]}]}
        """
        guard case .steps(let spec) = try JobDocument.parse(Data(json.utf8)) else { throw FixtureError("not a job of steps") }
        let report = try await StepsRunner(jobs: JobRunner(maxReportBytes: 1024)).run(spec)
        let tested = report.steps.first?.tests ?? []
        #expect(tested.map(\.verdict) == [.wrongAnswer, .wrongAnswer, .wrongAnswer])
        #expect(tested.last?.processes.first?.report.stderr?.bytes == 0, "the captures used the budget up")
        #expect(tested.allSatisfy { !$0.comment.isEmpty }, "\(tested.map(\.comment))")
    }
}
}
