import Corral
import CorralServer
import CorralTestSupport
import Foundation
import Testing

/// `POST /v1/run` with a job of steps: compile once, test three times, verdicts back.
@Suite("POST /v1/run with steps", .serialized, .cgroupExclusive)
struct StepsRouteTests {
    static let source = """
    #include <stdio.h>
    int main(void) { long n; if (scanf("%ld", &n) != 1) return 2; if (n < 0) for (;;) {} printf("%ld\\n", 2 * n); return 0; }
    """

    func body(tests: [[String: Any]], stopOnFirstFailure: Bool = false) -> JobBody {
        JobBody(["steps": [
            ["name": "compile", "processes": [["args": ["/usr/bin/cc", "-O1", "-o", "sol", "sol.c"], "limits": ["wallTime": 60]]],
             "files": [["path": "sol.c", "content": Self.source]]],
            ["name": "test", "processes": [["args": ["./sol"], "limits": ["cpuTime": 0.5]]],
             "files": [["path": "sol", "fromStep": "compile", "fromPath": "sol"]],
             "checker": "tokens", "stopOnFirstFailure": stopOnFirstFailure, "tests": tests],
        ] as [Any]])
    }

    func test(_ input: String, _ answer: String) -> [String: Any] {
        ["stdin": ["content": input], "answer": ["content": answer]]
    }

    @Test("compile, 3 tests: accepted, accepted, wrong-answer; a TLE stops the rest; as documented; metrics per verdict")
    func compileAndTest() async throws {
        let document = try OpenAPIDocument.load()
        guard geteuid() == 0 else {
            Issue.record("skipped: a server's isolated compile step needs root here")
            return
        }
        try await withServer { server in
            let answer = try await server.run(body(tests: [test("21", "42"), test("5\n", "10\n"), test("1", "3")]))
            #expect(answer.status == 200, "\(answer.text)")
            let value = try JSONSerialization.jsonObject(with: answer.body)
            let problems = document.validate(value, against: try document.responseSchema("POST", "/v1/run", status: 200))
            #expect(problems.isEmpty, "\(problems)")
            let steps = answer.json["steps"] as? [[String: Any]] ?? []
            #expect(steps.count == 2, "\(answer.text.prefix(2000))")
            let tests = steps.last?["tests"] as? [[String: Any]] ?? []
            #expect(tests.map { $0["verdict"] as? String } == ["accepted", "accepted", "wrong-answer"])
            let summary = answer.json["summary"] as? [String: Any] ?? [:]
            #expect(summary["passed"] as? Int == 2)
            #expect((summary["firstFailure"] as? [String: Any])?["test"] as? String == "3")

            let stopped = try await server.run(body(tests: [test("1", "2"), test("-1", "0"), test("3", "6")], stopOnFirstFailure: true))
            let stoppedTests = (stopped.json["steps"] as? [[String: Any]])?.last?["tests"] as? [[String: Any]] ?? []
            #expect(stoppedTests.map { $0["verdict"] as? String } == ["accepted", "time-limit"], "\(stopped.text.prefix(2000))")
            #expect((stopped.json["summary"] as? [String: Any])?["run"] as? Int == 2)

            let metrics = try await server.metrics()
            #expect(metrics["corral_tests_total{verdict=\"accepted\"}"] == 3)
            #expect(metrics["corral_tests_total{verdict=\"wrong-answer\"}"] == 1)
            #expect(metrics["corral_tests_total{verdict=\"time-limit\"}"] == 1)
            #expect(metrics["corral_tests_total{verdict=\"checker-error\"}"] == 0)
        }
    }

    @Test("a steps spec that does not validate: 400 naming the field")
    func refused() async throws {
        try await withServer { server in
            let cases: [(String, String)] = [
                (#"{"steps": []}"#, "steps"),
                (#"{"steps": [{"processes": [{"args": ["/bin/true"]}]}]}"#, "steps[0].name"),
                (#"{"steps": [{"name": "a", "processes": [{"args": ["/bin/true"], "limits": {"cpuTime": 100000}}]}]}"#, "steps[0].processes[0].limits.cpuTime"),
                (#"{"steps": [{"name": "a", "processes": [{"args": ["/bin/true"]}], "tests": [{"stdin": {"content": ""}}], "checker": "fuzzy"}]}"#, "steps[0].checker"),
                (#"{"steps": [{"name": "a", "processes": [{"args": ["/bin/true"]}], "files": [{"path": "x", "fromStep": "a", "fromPath": "y"}]}]}"#, "steps[0].files[0].fromStep"),
                (#"{"steps": [{"name": "a", "processes": [{"args": ["/bin/true"]}], "tests": [{"stdin": {"fromStep": "z", "fromPath": "y"}}]}]}"#, "steps[0].tests[0].stdin.fromStep"),
            ]
            for (json, path) in cases {
                let answer = try await server.post(json: json)
                #expect(answer.status == 400, "\(json): \(answer.text)")
                #expect(answer.json["path"] as? String == path, "\(json): \(answer.text)")
            }
        }
    }

    @Test("a step over the server's --max-tests is refused with 400 naming the flag; at the ceiling it runs")
    func testsCeiling() async throws {
        @Sendable func steps(_ count: Int) -> String {
            let tests = Array(repeating: #"{"stdin": {"content": ""}}"#, count: count).joined(separator: ", ")
            return #"{"steps": [{"name": "a", "processes": [{"args": ["/bin/true"]}], "checker": "exact", "tests": [\#(tests)]}]}"#
        }
        try await withServer(testConfiguration { $0.ceilings.stepTests = 3 }) { server in
            let over = try await server.post(json: steps(4))
            #expect(over.status == 400, "\(over.text)")
            #expect(over.json["path"] as? String == "steps[0].tests", "\(over.text)")
            #expect(over.text.contains("4 tests") && over.text.contains("--max-tests"), "\(over.text)")
            let at = try await server.post(json: steps(3))
            #expect(at.status == 200, "\(at.text)")
            #expect(at.text.contains(#""passed":3"#), "\(at.text)")
        }
    }

    @Test("a job whose runs in turn could hold its slot past --max-job-time is refused with 400 naming the flag; within it, it runs")
    func jobTimeCeiling() async throws {
        @Sendable func steps(_ count: Int) -> String {
            let tests = Array(repeating: #"{"stdin": {"content": ""}}"#, count: count).joined(separator: ", ")
            return #"{"steps": [{"name": "a", "processes": [{"args": ["/bin/true"], "limits": {"wallTime": "1s"}}], "checker": "exact", "tests": [\#(tests)]}]}"#
        }
        try await withServer(testConfiguration { $0.ceilings.jobTime = .seconds(5); $0.defaults.wallTime = .seconds(1) }) { server in
            let over = try await server.post(json: steps(10))
            #expect(over.status == 400, "\(over.text)")
            #expect(over.json["path"] as? String == "steps", "\(over.text)")
            #expect(over.text.contains("--max-job-time"), "\(over.text)")
            let within = try await server.post(json: steps(4))
            #expect(within.status == 200, "\(within.text)")
            #expect(within.text.contains(#""passed":4"#), "\(within.text)")
            // A plain job is bounded by the longest of its processes' wall times.
            let plain = try await server.post(json: #"{"processes": [{"args": ["/bin/true"], "limits": {"wallTime": "6s"}}]}"#)
            #expect(plain.status == 400, "\(plain.text)")
            #expect(plain.json["path"] as? String == "processes", "\(plain.text)")
        }
    }

    @Test("a job whose file work between runs outlasts --max-job-time is stopped in its slot: 5000 tests of 1 µs each, admitted, stop early")
    func jobDeadline() async throws {
        // Admission counts the runs' wall times only: each test's own set-up (its files, its
        // directory, the check) is outside them. 5000 tests of 1 µs were admitted under a
        // ceiling of 1 s and held the slot for their set-up alone; 64 steps of 1000 such tests
        // copying large files would have held it for hours.
        let tests = Array(repeating: #"{"stdin": {"content": "x"}}"#, count: 5000).joined(separator: ", ")
        let job = #"{"steps": [{"name": "a", "processes": [{"args": ["/bin/true"], "limits": {"wallTime": "1us"}}], "#
            + #""checker": "exact", "stopOnFirstFailure": false, "tests": [\#(tests)]}]}"#
        let configuration = testConfiguration {
            $0.ceilings.jobTime = .seconds(1)
            $0.ceilings.stepTests = 5000
            $0.defaults.wallTime = .milliseconds(500)
        }
        try await withServer(configuration) { server in
            let started = ContinuousClock.now
            let answer = try await server.post(json: job)
            let took = ContinuousClock.now - started
            #expect(answer.status == 200, "\(answer.text.prefix(500))")
            let summary = answer.json["summary"] as? [String: Any] ?? [:]
            let run = summary["run"] as? Int ?? -1
            #expect(run >= 0 && run < 5000, "\(summary)")
            #expect((answer.json["stopped"] as? String)?.contains("--max-job-time") == true, "\(answer.json["stopped"] ?? "no stopped")")
            #expect(answer.json["ok"] as? Bool == false)
            // Stopped at 1 s + 0.1 s + 1 s in its slot; the answer itself takes a moment more.
            #expect(took < .seconds(30), "\(took)")
        }
    }

    @Test("collecting into the store stops at the job's deadline: 32 sparse 64 MiB files, the rest not collected, naming --max-job-time")
    func collectStopsAtDeadline() async throws {
        // Collection runs after the runs, outside their wall times: 64 such files held a slot
        // 21.9 s past a 3.2 s deadline (about 0.34 s each, release build).
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let names = (0..<32).map { "f\($0)" }
        let collect = names.map { #"{"path": "\#($0)", "store": true, "max": "64M"}"# }.joined(separator: ", ")
        let job = #"{"processes": [{"args": ["/usr/bin/truncate", "-s", "64M", \#(names.map { "\"\($0)\"" }.joined(separator: ", "))], "#
            + #""limits": {"output": "64M", "wallTime": "1s"}}], "collect": [\#(collect)]}"#
        let configuration = testConfiguration {
            $0.ceilings.jobTime = .seconds(1)
            $0.defaults.wallTime = .milliseconds(500)
            $0.fileStore = FileStoreSettings(directory: directory.file("store"), maxBytes: 4 << 30, maxFileBytes: 64 << 20)
        }
        try await withServer(configuration) { server in
            let started = ContinuousClock.now
            let answer = try await server.post(json: job)
            // The deadline is 2.1 s after the job got its slot; all 32 files take over 10 s.
            let took = ContinuousClock.now - started
            #expect(took < .seconds(8), "\(took)")
            #expect(answer.status == 200, "\(answer.text.prefix(500))")
            let files = answer.json["files"] as? [[String: Any]] ?? []
            #expect(files.count == 32)
            let stopped = files.filter { ($0["error"] as? String)?.contains("--max-job-time") == true }
            #expect(!stopped.isEmpty, "\(files.map { $0["error"] ?? $0["fileId"] ?? "?" })")
        }
    }
}
