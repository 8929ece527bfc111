import Corral
import CorralTestSupport
import Foundation
import Testing

extension IntegrationTests {
/// Issue 15's acceptance through the library: ``JudgeAcceptance`` with a ``FileStore``.
@Suite("Judge acceptance (library)", .enabled(if: geteuid() == 0, "the steps run isolated: root"))
struct JudgeAcceptanceTests {
    func run(_ json: String, store: FileStore) async throws -> [String: Any] {
        guard case .steps(let spec) = try JobDocument.parse(Data(json.utf8)) else { throw FixtureError("not a job of steps") }
        let report = try await StepsRunner(jobs: JobRunner(fileStore: store)).run(spec)
        let data = try JSONEncoder().encode(report)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test("a stored C++ source: compiled isolated and tested (accepted, accepted, wrong-answer); the stored binary by id, no compile, stops at a time limit")
    func compileOnceRunByID() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let store = try FileStore(directory: directory.path + "/store", maxBytes: 64 << 20)
        let sourceId = try store.put(Array(JudgeAcceptance.source.utf8)).id
        let first = try await run(JudgeAcceptance.compileAndTest(sourceId: sourceId.description), store: store)
        let binaryId = JudgeAcceptance.problems(first: first, second: [:]).binaryId
        let id = try #require(binaryId, "\(first)")
        let second = try await run(JudgeAcceptance.rerun(binaryId: id), store: store)
        let problems = JudgeAcceptance.problems(first: first, second: second).problems
        #expect(problems.isEmpty, "\(problems)")
        #expect(CgroupCheck.busyRunCgroups().isEmpty)
    }
}
}
