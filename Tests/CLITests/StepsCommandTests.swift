import CorralTestSupport
import Foundation
import Testing

@Suite("corral run --spec with steps")
struct StepsCommandTests {
    static let source = """
    #include <stdio.h>
    int main(void) { long n; if (scanf("%ld", &n) != 1) return 2; printf("%ld\\n", 2 * n); return 0; }
    """

    @Test("compile, then 3 tests: verdicts on stderr and in the report, exit 1 for a test not accepted")
    func compileAndTest() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let spec: [String: Any] = ["steps": [
            ["name": "compile", "processes": [["args": ["/usr/bin/cc", "-o", "sol", "sol.c"], "limits": ["wallTime": 60]]],
             "files": [["path": "sol.c", "content": Self.source]]],
            ["name": "test", "processes": [["args": ["./sol"], "limits": ["cpuTime": 1]]],
             "files": [["path": "sol", "fromStep": "compile", "fromPath": "sol"]],
             "tests": [["stdin": ["content": "21\n"], "answer": ["content": "42\n"]],
                       ["stdin": ["content": "4\n"], "answer": ["content": "8\n"]],
                       ["name": "big", "stdin": ["content": "1\n"], "answer": ["content": "3\n"]]]],
        ] as [Any]]
        let path = directory.file("job.json")
        try JSONSerialization.data(withJSONObject: spec).write(to: URL(fileURLWithPath: path))
        let result = try corral("run", "--spec", path)
        #expect(result.status == 1, "\(result.standardError)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        let steps = try #require(report["steps"] as? [[String: Any]])
        let tests = steps.last?["tests"] as? [[String: Any]] ?? []
        #expect(tests.map { $0["verdict"] as? String } == ["accepted", "accepted", "wrong-answer"])
        #expect(result.standardError.contains("test test big: wrong-answer"), "\(result.standardError)")
        #expect(result.standardError.contains("2 of 3 tests passed"), "\(result.standardError)")

        // The same with every answer right: exit 0.
        var right = spec
        var stepList = right["steps"] as! [[String: Any]]
        stepList[1]["tests"] = [["stdin": ["content": "1\n"], "answer": ["content": "2\n"]]]
        right["steps"] = stepList
        try JSONSerialization.data(withJSONObject: right).write(to: URL(fileURLWithPath: path))
        let ok = try corral("run", "--quiet", "--spec", path)
        #expect(ok.status == 0, "\(ok.standardError)")
    }

    @Test("a steps spec that does not validate: one line naming the field, exit 125")
    func refused() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("job.json")
        try #"{"steps": [{"name": "a", "processes": [{"args": ["/bin/true"]}], "tests": [{"stdin": {"content": "x"}, "answer": {"nope": 1}}]}]}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        let result = try corral("run", "--spec", path)
        #expect(result.status == 125)
        #expect(result.standardError.contains("steps[0].tests[0].answer.nope: unknown field"), "\(result.standardError)")
    }

    @Test("SIGINT during a test: the test is cancelled (not a runtime error), the next step skipped, 'stopped' says so; exit 130")
    func interruptedTest() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let marker = "32.\(Int.random(in: 1000...9999))"
        let spec: [String: Any] = ["steps": [
            ["name": "test", "processes": [["args": ["/bin/sleep", marker], "limits": ["wallTime": 60]]],
             "tests": [["stdin": ["content": ""], "answer": ["content": ""]]]],
            ["name": "after", "processes": [["args": ["/bin/true"]]]],
        ] as [Any]]
        let path = directory.file("job.json")
        try JSONSerialization.data(withJSONObject: spec).write(to: URL(fileURLWithPath: path))
        let started = try Spawn.start(corralPath, ["run", "--spec", path, "--report", directory.file("report.json")])
        for _ in 0..<500 where Leftovers.sleepers(marker) == 0 { usleep(10_000) }
        #expect(Leftovers.sleepers(marker) == 1, "the test never started")
        kill(started.pid, SIGINT)
        let result = started.wait()
        #expect(result.status == 130, "\(result.standardError)")
        let report = try decodeReport(directory.file("report.json"))
        let steps = report["steps"] as? [[String: Any]] ?? []
        let tests = steps.first?["tests"] as? [[String: Any]] ?? []
        #expect(tests.map { $0["verdict"] as? String } == ["cancelled"], "\(tests)")
        #expect(report["skipped"] as? [String] == ["after"])
        #expect(report["stopped"] is String, "\(report)")
        #expect(report["ok"] as? Bool == false)
        #expect(Leftovers.sleepers(marker) == 0)
    }
}
