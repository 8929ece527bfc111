import Corral
import CorralServer
import CorralTestSupport
import Foundation
import Testing

/// Issue 15's acceptance through HTTP: the source uploaded once (`POST /v1/files`), then two
/// `POST /v1/run` jobs of steps, the second taking the stored binary by id.
@Suite("Judge acceptance (HTTP)", .serialized, .cgroupExclusive)
struct JudgeAcceptanceRouteTests {
    @Test("an uploaded C++ source: compiled isolated and tested (accepted, accepted, wrong-answer); the stored binary by id, no compile, stops at a time limit")
    func compileOnceRunByID() async throws {
        guard geteuid() == 0 else {
            Issue.record("skipped: the server's isolated compile step needs root here")
            return
        }
        let directory = "/tmp/corral-judge-acceptance-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await withServer(storeConfiguration(directory, maxBytes: 64 << 20, maxFileBytes: 16 << 20)) { server in
            let upload = try await server.files(.post, "/v1/files", body: Array(JudgeAcceptance.source.utf8))
            #expect(upload.status == 201, "\(upload.text)")
            let sourceId = try #require(upload.json["id"] as? String, "\(upload.text)")
            let first = try await server.post(json: JudgeAcceptance.compileAndTest(sourceId: sourceId))
            #expect(first.status == 200, "\(first.text)")
            let id = try #require(JudgeAcceptance.problems(first: first.json, second: [:]).binaryId, "\(first.text.prefix(3000))")
            let second = try await server.post(json: JudgeAcceptance.rerun(binaryId: id))
            #expect(second.status == 200, "\(second.text)")
            let problems = JudgeAcceptance.problems(first: first.json, second: second.json).problems
            #expect(problems.isEmpty, "\(problems)")
        }
    }
}
