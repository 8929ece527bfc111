import Corral
import CorralTestSupport
import Foundation
import Testing

extension IntegrationTests {
/// A step's tests work in directories of the step's own that are, as root, a tmpfs each
/// (no disk journal per test): what that changes must hold as before, and what it adds
/// (memory pages for a test's files) must be counted against the test.
@Suite("A step's in-memory directories", .enabled(if: geteuid() == 0, "mounting a tmpfs needs root"))
struct StepDirectoryTests {
    func runSteps(_ json: String) async throws -> StepsReport {
        guard case .steps(let spec) = try JobDocument.parse(Data(json.utf8)) else { throw FixtureError("not a job of steps") }
        return try await StepsRunner().run(spec)
    }

    @Test("a test's working directory is on a tmpfs, unmounted and removed with the step")
    func tmpfsPerStep() async throws {
        // The program names the file system of its directory, and the directory on stderr.
        let script = #"stat -f -c %T .; pwd >&2"#
        let test = #"{"stdin": {"content": ""}, "answer": {"content": "tmpfs\n"}}"#
        let report = try await runSteps("""
        {"steps": [{"name": "t", "processes": [{"args": ["/bin/sh", "-c", \(jsonLiteral(script))], "limits": {"wallTime": 10}}],
          "checker": "exact", "tests": [\(test), \(test)]}]}
        """)
        let tests = report.steps[0].tests
        #expect(tests.map(\.verdict) == [.accepted, .accepted], "\(tests.map(\.comment))")
        let directories = tests.compactMap { $0.processes[0].report.stderr?.text?.trimmingCharacters(in: .whitespacesAndNewlines) }
        #expect(directories.count == 2)
        // The same step directory for both tests (one mount per step), gone after it with its mount.
        let steps = Set(directories.map { ($0 as NSString).deletingLastPathComponent })
        #expect(steps.count == 1)
        let mounts = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
        for step in steps {
            #expect(step.contains("corral-job-"), "\(step)")
            #expect(!FileManager.default.fileExists(atPath: step), "\(step) is still there")
            #expect(!mounts.contains(" \(step) "), "\(step) is still mounted")
        }
    }

    @Test("a test's files in its in-memory directory count against its memory; the next test starts empty", arguments: [false, true])
    func filesCountAgainstTheTest(isolate: Bool) async throws {
        // The first test writes 256 MB under a 64 MB limit; the second lists its directory.
        let script = "read n; if [ $n = 1 ]; then head -c 268435456 /dev/zero > big; echo wrote; else ls -A; fi"
        let report = try await runSteps("""
        {"steps": [{"name": "t", "processes": [{"args": ["/bin/sh", "-c", \(jsonLiteral(script))], "isolate": \(isolate),
                                                "limits": {"memory": "64M", "wallTime": 20}}],
          "checker": "exact", "tests": [{"stdin": {"content": "1\\n"}, "answer": {"content": "wrote\\n"}},
                                        {"stdin": {"content": "2\\n"}, "answer": {"content": ""}}]}]}
        """)
        let tests = report.steps[0].tests
        #expect(tests.map(\.verdict) == [.memoryLimit, .accepted], "\(tests.map(\.comment)) \(tests.map(\.status))")
        if let first = tests.first {
            let peak = first.processes[0].report.memoryPeak
            #expect(peak >= 32 << 20, "the written pages were not counted: peak \(peak)")
        }
    }
}
}
