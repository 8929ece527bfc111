import Corral
import CorralTestSupport
import Foundation
import Testing

/// One table of job scenarios run in every mode: plain and isolated, through the library,
/// the CLI and HTTP, so a fix in one place cannot leave another broken. Each scenario is a
/// job spec and a check of the report's JSON, the same document on every path.
@Suite("Conformance matrix", .serialized)
struct ConformanceMatrixTests {
    enum Path: String, CaseIterable, Sendable { case library, cli, http }

    struct Scenario: Sendable, CustomStringConvertible {
        let description: String
        /// The spec, with `ISOLATE` standing for `true` or `false`.
        let spec: String
        let check: @Sendable ([String: Any]) -> [String]
    }

    static func processes(_ report: [String: Any]) -> [[String: Any]] { report["processes"] as? [[String: Any]] ?? [] }
    static func text(_ value: Any?) -> String? { (value as? [String: Any])?["text"] as? String }

    static let scenarios: [Scenario] = [
        Scenario(description: "an interactive pair", spec: """
            {"processes": [
              {"name": "asker", "isolate": ISOLATE, "args": ["/bin/sh", "-c", "echo question; read answer; echo \\"got $answer\\" > log"],
               "limits": {"wallTime": 10, "output": "1M"}, "stdin": {"pipe": "answers"}, "stdout": {"pipe": "questions"}},
              {"name": "answerer", "isolate": ISOLATE, "args": ["/bin/sh", "-c", "read q; echo 42"], "limits": {"wallTime": 10},
               "stdin": {"pipe": "questions"}, "stdout": {"pipe": "answers"}}],
             "pipes": ["questions", "answers"], "collect": [{"path": "log", "process": "asker"}]}
            """) { report in
            var problems: [String] = []
            if report["status"] as? String != "ok" { problems.append("status \(report["status"] ?? "")") }
            let file = (report["files"] as? [[String: Any]])?.first
            if text(file?["content"]) != "got 42\n" { problems.append("log \(file ?? [:])") }
            if file?["process"] as? String != "asker" { problems.append("collected from \(file?["process"] ?? "")") }
            return problems
        },
        Scenario(description: "processes that end out of order", spec: """
            {"processes": [
              {"name": "slow", "isolate": ISOLATE, "args": ["/bin/sh", "-c", "sleep 0.4; exit 3"], "limits": {"wallTime": 10}},
              {"name": "fast", "isolate": ISOLATE, "args": ["/bin/true"], "limits": {"wallTime": 10}},
              {"name": "walled", "isolate": ISOLATE, "args": ["/bin/sleep", "10"], "limits": {"wallTime": "300ms"}},
              {"name": "middle", "isolate": ISOLATE, "args": ["/bin/sh", "-c", "sleep 0.1; exit 5"], "limits": {"wallTime": 10}}]}
            """) { report in
            let got = processes(report).map { "\($0["name"] ?? "")=\($0["status"] ?? ""):\($0["exitCode"] ?? "")" }
            let expected = ["slow=nonzero-exit:3", "fast=ok:0", "walled=wall-time-limit:<null>", "middle=nonzero-exit:5"]
            return got == expected ? [] : ["reports \(got)"]
        },
        Scenario(description: "one process over its CPU limit, the other fine", spec: """
            {"processes": [
              {"name": "spinner", "isolate": ISOLATE, "args": ["/bin/sh", "-c", "while :; do :; done"], "limits": {"cpuTime": "300ms", "wallTime": 10}},
              {"name": "fine", "isolate": ISOLATE, "args": ["/bin/echo", "fine"], "limits": {"wallTime": 10}}]}
            """) { report in
            let all = processes(report)
            var problems: [String] = []
            if all.first?["status"] as? String != "cpu-time-limit" { problems.append("spinner \(all.first?["status"] ?? "")") }
            if all.last?["status"] as? String != "ok" || text(all.last?["stdout"]) != "fine\n" { problems.append("fine \(all.last ?? [:])") }
            if report["status"] as? String != "cpu-time-limit" { problems.append("job \(report["status"] ?? "")") }
            return problems
        },
        Scenario(description: "a capture cut at its cap", spec: """
            {"processes": [{"isolate": ISOLATE, "args": ["/bin/sh", "-c", "head -c 100000 /dev/zero | tr '\\\\0' a"],
                            "limits": {"wallTime": 10}, "stdout": {"capture": {"max": 100}}}]}
            """) { report in
            let process = processes(report).first ?? [:]
            let stdout = process["stdout"] as? [String: Any]
            var problems: [String] = []
            if process["status"] as? String != "output-limit" { problems.append("status \(process["status"] ?? "")") }
            if stdout?["bytes"] as? Int != 100 || stdout?["truncated"] as? Bool != true { problems.append("stdout \(stdout ?? [:])") }
            return problems
        },
        Scenario(description: "collected files", spec: """
            {"processes": [{"isolate": ISOLATE, "args": ["/bin/sh", "-c", "cat given > copy; echo abcdef > big; ln -s /etc/passwd link"],
                            "limits": {"wallTime": 10}}],
             "files": [{"path": "given", "content": "in\\n"}],
             "collect": [{"path": "copy"}, {"path": "big", "max": 3}, {"path": "link"}, {"path": "missing"}]}
            """) { report in
            let files = report["files"] as? [[String: Any]] ?? []
            guard files.count == 4 else { return ["files \(files)"] }
            var problems: [String] = []
            if text(files[0]["content"]) != "in\n" { problems.append("copy \(files[0])") }
            let big = files[1]["content"] as? [String: Any]
            if big?["text"] as? String != "abc" || big?["truncated"] as? Bool != true { problems.append("big \(files[1])") }
            if (files[2]["error"] as? String)?.contains("symbolic link") != true { problems.append("link \(files[2])") }
            if files[3]["error"] as? String != "no such file" { problems.append("missing \(files[3])") }
            return problems
        },
    ]

    static func run(_ spec: String, through path: Path, server: ServeProcess?) async throws -> [String: Any] {
        switch path {
        case .library:
            let report = try await JobRunner().run(try JobSpec.parse(Data(spec.utf8)))
            return try JSONSerialization.jsonObject(with: Data(ReportJSON.encode(report))) as? [String: Any] ?? [:]
        case .cli:
            let tmp = TemporaryDirectory()
            defer { tmp.remove() }
            try spec.write(toFile: tmp.file("job.json"), atomically: true, encoding: .utf8)
            let result = try Spawn.run(corralBinary, ["run", "--quiet", "--spec", tmp.file("job.json")])
            return try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any] ?? [:]
        case .http:
            let answer = try #require(server).run(spec)
            #expect(answer.status == 200, "\(answer.text)")
            return answer.json
        }
    }

    @Test("every scenario, plain and isolated, through the library, the CLI and HTTP",
          .enabled(if: geteuid() == 0, "isolated runs and a server's default isolation need root here"))
    func matrix() async throws {
        // A server that isolates (the default) refuses "isolate": false: one of each.
        let isolating = try ServeProcess.start([])
        defer { isolating.stop() }
        let plain = try ServeProcess.start(["--no-isolate"])
        defer { plain.stop() }
        for isolate in [false, true] {
            for path in Path.allCases {
                for scenario in Self.scenarios {
                    let spec = scenario.spec.replacingOccurrences(of: "ISOLATE", with: isolate ? "true" : "false")
                    let report = try await Self.run(spec, through: path, server: isolate ? isolating : plain)
                    let problems = scenario.check(report)
                    #expect(problems.isEmpty, "\(scenario), \(isolate ? "isolated" : "plain"), \(path.rawValue): \(problems)")
                }
            }
        }
    }
}
