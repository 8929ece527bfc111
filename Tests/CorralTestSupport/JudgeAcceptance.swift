import Foundation

/// Issue 15's "done means", the same through the library, the CLI and HTTP: a C++ source
/// stored once; one job compiles it isolated (the binary collected into the store) and runs it
/// on three tests with a checker (accepted, accepted, wrong-answer); a second job takes the
/// stored binary by id, compiles nothing, and stops at a test that runs out of CPU time.
public enum JudgeAcceptance {
    /// Reads n, prints 2n; spins when n < 0 (the time-limit test).
    public static let source = """
    #include <iostream>
    int main() { long n; if (!(std::cin >> n)) return 2; if (n < 0) for (;;) {} std::cout << 2 * n << "\\n"; return 0; }
    """

    static func text(_ value: String) -> String {
        String(decoding: try! JSONEncoder().encode(value), as: UTF8.self)
    }

    static func test(_ input: String, _ answer: String) -> String {
        #"{"stdin": {"content": \#(text(input))}, "answer": {"content": \#(text(answer))}}"#
    }

    /// Compile `sourceId` (a file id of ``source``) with g++, isolated; test three times.
    public static func compileAndTest(sourceId: String) -> String {
        """
        {"steps": [
          {"name": "compile", "processes": [{"args": ["/usr/bin/g++", "-O1", "-o", "sol", "sol.cpp"], "isolate": true,
             "limits": {"wallTime": 120, "memory": "1G", "processes": 32}}],
           "files": [{"path": "sol.cpp", "fileId": "\(sourceId)"}],
           "collect": [{"path": "sol", "store": true}]},
          {"name": "test", "processes": [{"args": ["./sol"], "isolate": true, "limits": {"cpuTime": "500ms", "wallTime": 5}}],
           "files": [{"path": "sol", "fromStep": "compile", "fromPath": "sol"}],
           "checker": "tokens",
           "tests": [\(test("21\n", "42\n")), \(test("5", "10")), \(test("1\n", "3\n"))]}
        ]}
        """
    }

    /// The stored binary by id, no compile step: accepted, then a time limit, and with
    /// stopOnFirstFailure the third test is not run.
    public static func rerun(binaryId: String) -> String {
        """
        {"steps": [
          {"name": "test", "processes": [{"args": ["./sol"], "isolate": true, "limits": {"cpuTime": "500ms", "wallTime": 5}}],
           "files": [{"path": "sol", "fileId": "\(binaryId)", "executable": true}],
           "checker": "tokens", "stopOnFirstFailure": true,
           "tests": [\(test("1", "2")), \(test("-1", "0")), \(test("3", "6"))]}
        ]}
        """
    }

    /// What the two reports (as JSON objects) must show; each failure is a message.
    public static func problems(first: [String: Any], second: [String: Any]) -> (binaryId: String?, problems: [String]) {
        var problems: [String] = []
        let steps = first["steps"] as? [[String: Any]] ?? []
        if steps.map({ $0["name"] as? String }) != ["compile", "test"] { problems.append("first job's steps: \(steps.map { $0["name"] ?? "?" })") }
        let compile = steps.first ?? [:]
        if compile["ok"] as? Bool != true { problems.append("the compile step failed: \(compile)") }
        let stored = (compile["files"] as? [[String: Any]])?.first
        let binaryId = stored?["fileId"] as? String
        if binaryId == nil || stored?["executable"] as? Bool != true { problems.append("the binary was not stored executable: \(String(describing: stored))") }
        let verdicts = ((steps.last?["tests"] as? [[String: Any]]) ?? []).map { $0["verdict"] as? String ?? "?" }
        if verdicts != ["accepted", "accepted", "wrong-answer"] { problems.append("first job's verdicts: \(verdicts)") }
        let rerunSteps = second["steps"] as? [[String: Any]] ?? []
        if rerunSteps.map({ $0["name"] as? String }) != ["test"] { problems.append("second job's steps: \(rerunSteps.map { $0["name"] ?? "?" })") }
        let rerunVerdicts = ((rerunSteps.first?["tests"] as? [[String: Any]]) ?? []).map { $0["verdict"] as? String ?? "?" }
        if rerunVerdicts != ["accepted", "time-limit"] { problems.append("second job's verdicts: \(rerunVerdicts)") }
        let summary = second["summary"] as? [String: Any] ?? [:]
        if summary["tests"] as? Int != 3 || summary["run"] as? Int != 2 { problems.append("second job's summary: \(summary)") }
        return (binaryId, problems)
    }
}
