import CorralTestSupport
import Foundation
import Testing

/// Issue 15's acceptance through the CLI: `corral run --spec --file-store`, the source put in
/// the store by a first run that collects it.
@Suite("Judge acceptance (corral run --spec)", .enabled(if: geteuid() == 0, "the steps run isolated: root"))
struct JudgeAcceptanceCommandTests {
    func run(_ json: String, in directory: TemporaryDirectory, store: String) throws -> (status: Int32, report: [String: Any], stderr: String) {
        let path = directory.file("job-\(UUID().uuidString).json")
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try corral("run", "--spec", path, "--file-store", store)
        let report = (try? JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any]) ?? [:]
        return (result.status, report, result.standardError)
    }

    @Test("a stored C++ source: compiled isolated and tested (accepted, accepted, wrong-answer); the stored binary by id, no compile, stops at a time limit")
    func compileOnceRunByID() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let store = directory.file("store")
        // The source into the store: a run that collects it (the CLI's upload).
        let put = try run(#"""
        {"processes": [{"args": ["/bin/cat", "sol.cpp"]}], "files": [{"path": "sol.cpp", "content": \#(String(decoding: try JSONEncoder().encode(JudgeAcceptance.source), as: UTF8.self))}],
         "collect": [{"path": "sol.cpp", "store": true}]}
        """#, in: directory, store: store)
        let sourceId = try #require((put.report["files"] as? [[String: Any]])?.first?["fileId"] as? String, "\(put.stderr)")
        let first = try run(JudgeAcceptance.compileAndTest(sourceId: sourceId), in: directory, store: store)
        #expect(first.status == 1, "a test not accepted: exit 1; \(first.stderr)")
        let id = try #require(JudgeAcceptance.problems(first: first.report, second: [:]).binaryId, "\(first.stderr)")
        let second = try run(JudgeAcceptance.rerun(binaryId: id), in: directory, store: store)
        #expect(second.status == 1, "\(second.stderr)")
        #expect(second.stderr.contains("time-limit"), "\(second.stderr)")
        let problems = JudgeAcceptance.problems(first: first.report, second: second.report).problems
        #expect(problems.isEmpty, "\(problems)")
    }
}
