import Corral
import CorralServer
import CorralTestSupport
import Foundation
import Testing

/// Issue 15 over HTTP: `capture.onLimit`, `ignoreSignals` and the job's clock in `POST /v1/run`.
@Suite("POST /v1/run: onLimit, ignoreSignals, startedAt/endedAt", .serialized, .cgroupExclusive)
struct RunOptionsRouteTests {
    let document: OpenAPIDocument

    init() throws {
        document = try OpenAPIDocument.load()
    }

    func expectDocumented(_ answer: Answer, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let schema = try document.responseSchema("POST", "/v1/run", status: answer.status)
        let problems = document.validate(try JSONSerialization.jsonObject(with: answer.body), against: schema)
        #expect(problems.isEmpty, "\(answer.status): \(problems)", sourceLocation: sourceLocation)
    }

    @Test("10 MB to a 1000-byte capture with onLimit truncate: 200, ok, 1000 bytes, truncated; kill: output-limit")
    func truncate() async throws {
        try await withServer { server in
            for (action, status) in [("truncate", "ok"), ("kill", "output-limit")] {
                let answer = try await server.run(job(["/usr/bin/head", "-c", "10000000", "/dev/zero"], limits: ["wallTime": 20],
                                                      extra: ["stdout": ["capture": ["max": 1000, "onLimit": action]],
                                                              "ignoreSignals": ["SIGPIPE"]]))
                #expect(answer.status == 200, "\(answer.text)")
                #expect(answer.json["status"] as? String == status, "\(action): \(answer.text.prefix(2000))")
                let stdout = answer.process["stdout"] as? [String: Any]
                #expect(stdout?["bytes"] as? Int == 1000)
                #expect(stdout?["truncated"] as? Bool == true)
                if action == "truncate" { #expect(answer.process["exitCode"] as? Int == 0) }
                #expect(answer.process["startedAt"] is Double || answer.process["startedAt"] is Int, "\(answer.process)")
                #expect(answer.process["endedAt"] is Double, "\(answer.process)")
                try expectDocumented(answer)
            }
        }
        #expect(CgroupCheck.busyRunCgroups().isEmpty)
    }

    @Test("an unknown onLimit or a signal that cannot be ignored is a 400 naming the field")
    func refused() async throws {
        try await withServer { server in
            let cases: [(String, String)] = [
                (#"{"processes": [{"args": ["/bin/true"], "stdout": {"capture": {"onLimit": "cut"}}}]}"#, "processes[0].stdout.capture.onLimit"),
                (#"{"processes": [{"args": ["/bin/true"], "ignoreSignals": ["SIGKILL"]}]}"#, "processes[0].ignoreSignals[0]"),
                (#"{"processes": [{"args": ["/bin/true"], "ignoreSignals": ["SIGNOPE"]}]}"#, "processes[0].ignoreSignals[0]"),
            ]
            for (body, path) in cases {
                let answer = try await server.post(json: body)
                #expect(answer.status == 400, "\(body): \(answer.text)")
                #expect(answer.json["path"] as? String == path, "\(body): \(answer.text)")
                try expectDocumented(answer)
            }
        }
    }
}
