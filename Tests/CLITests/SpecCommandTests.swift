import CorralTestSupport
import Foundation
import Testing

@Suite("corral run --spec and captures")
struct SpecCommandTests {
    func write(_ json: String, in directory: TemporaryDirectory) throws -> String {
        let path = directory.file("job.json")
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("a job spec runs; the job report goes to stdout; the exit code is the first failing process's")
    func spec() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = try write("""
        {"processes": [{"name": "a", "args": ["/bin/sh", "-c", "echo hi; exit 3"]}, {"name": "b", "args": ["/bin/true"]}]}
        """, in: directory)
        let result = try corral("run", "--quiet", "--spec", path)
        #expect(result.status == 3)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        #expect(report["status"] as? String == "nonzero-exit")
        let processes = try #require(report["processes"] as? [[String: Any]])
        #expect(processes.map { $0["name"] as? String } == ["a", "b"])
        #expect((processes[0]["stdout"] as? [String: Any])?["text"] as? String == "hi\n")
        #expect(report["workdir"] is NSNull)
    }

    @Test("a spec that does not validate: one line naming the field, exit 125", arguments: [
        (#"{"processes": [{"args": ["a"], "stdin": {"pipe": "toSolution"}}]}"#, #"processes[0].stdin: unknown pipe "toSolution""#),
        (#"{"processes": [{"args": []}]}"#, "processes[0].args: must name a program"),
        (#"{"processes": [{"args": ["a"], "bogus": 1}]}"#, "processes[0].bogus: unknown field"),
        (#"{"processes": "#, "not valid JSON"),
    ])
    func refused(json: String, expected: String) throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let result = try corral("run", "--spec", try write(json, in: directory))
        #expect(result.status == 125)
        #expect(result.standardError.split(separator: "\n").count == 1, "\(result.standardError)")
        #expect(result.standardError.contains(expected), "\(result.standardError)")
        #expect(result.standardOutput.isEmpty)
    }

    @Test("--spec cannot be mixed with a program or per-run flags")
    func specConflicts() throws {
        let a = try corral("run", "--spec", "/dev/null", "--", "/bin/true")
        #expect(a.status == 125)
        let b = try corral("run", "--spec", "/dev/null", "--cpu-time", "1")
        #expect(b.status == 125)
        #expect(b.standardError.contains("--spec"))
    }

    @Test("--stdout-max and --stderr-max capture into the report")
    func captures() throws {
        let result = try corral("run", "--quiet", "--stdout-max", "1K", "--stderr-max", "10", "--report", "-", "--",
                                "/bin/sh", "-c", "echo out; echo a-long-error-line >&2")
        #expect(result.status == 124)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        #expect((report["stdout"] as? [String: Any])?["text"] as? String == "out\n")
        #expect((report["stderr"] as? [String: Any])?["text"] as? String == "a-long-err")
        #expect((report["stderr"] as? [String: Any])?["truncated"] as? Bool == true)
        #expect(report["status"] as? String == "output-limit")
    }

    @Test("--file and --collect run one process in a private working directory")
    func filesAndCollect() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let input = directory.file("numbers")
        try "1 2 3\n".write(toFile: input, atomically: true, encoding: .utf8)
        let result = try corral("run", "--quiet", "--file", "in.txt=\(input)", "--collect", "out.txt", "--",
                                "/bin/sh", "-c", "tr ' ' + < in.txt > out.txt")
        #expect(result.status == 0, "\(result.standardError)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        let files = try #require(report["files"] as? [[String: Any]])
        #expect(files.first?["path"] as? String == "out.txt")
        #expect((files.first?["content"] as? [String: Any])?["text"] as? String == "1+2+3\n")
    }

    @Test("--isolate with --file and --collect isolates the process", .enabled(if: geteuid() == 0, "isolation needs root"))
    func isolatedFiles() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let input = directory.file("numbers")
        try "4 5\n".write(toFile: input, atomically: true, encoding: .utf8)
        let result = try corral("run", "--quiet", "--isolate", "--file", "in.txt=\(input)", "--collect", "out.txt", "--",
                                "/bin/sh", "-c", "(hostname; pwd; id -u; cat in.txt) > out.txt")
        #expect(result.status == 0, "\(result.standardError)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        let files = try #require(report["files"] as? [[String: Any]])
        #expect((files.first?["content"] as? [String: Any])?["text"] as? String == "corral\n/box\n65534\n4 5\n")
        #expect(((report["processes"] as? [[String: Any]])?.first?["isolated"]) as? Bool == true)
    }

    /// Corral's own stdout is a file here (`corral run --spec job.json > report.json`): the
    /// job's pipes and stream files once were "relayed" into it under an output limit.
    @Test("with Corral's stdout a file, a job's pipes under an output limit stay the job's: the report is whole")
    func pipesAreNotRelayedIntoCorralsOutput() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = try write("""
        {"processes": [
          {"name": "asker", "args": ["/bin/sh", "-c", "echo question; read answer; echo \\"got $answer\\" > log"], "limits": {"output": "1M"},
           "stdin": {"pipe": "answers"}, "stdout": {"pipe": "questions"}},
          {"name": "answerer", "args": ["/bin/sh", "-c", "read q; echo 42"], "limits": {"output": "1M"},
           "stdin": {"pipe": "questions"}, "stdout": {"pipe": "answers"}}],
         "pipes": ["questions", "answers"], "collect": [{"path": "log", "process": "asker"}]}
        """, in: directory)
        for _ in 0..<3 {
            let result = try corral("run", "--quiet", "--spec", path)
            #expect(result.status == 0, "\(result.standardError)")
            let report = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any],
                                      "the report is not JSON: \(result.standardOutput)")
            #expect(report["status"] as? String == "ok")
            #expect(((report["files"] as? [[String: Any]])?.first?["content"] as? [String: Any])?["text"] as? String == "got 42\n")
        }
    }

    @Test("a descriptor target of 1023 under a soft open-files limit of 1024 works")
    func highDescriptorTarget() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = try write("""
        {"processes": [
          {"name": "writer", "args": ["python3", "-c", "import os; os.write(1023, b'through-1023\\\\n')"], "fds": {"1023": {"pipe": "p", "end": "write"}}},
          {"name": "reader", "args": ["/bin/cat"], "stdin": {"pipe": "p"}}],
         "pipes": ["p"]}
        """, in: directory)
        let result = try Spawn.run("/bin/sh", ["-c", "ulimit -Sn 1024 && exec \"$0\" run --quiet --spec \"$1\"", corralBinary, path])
        #expect(result.status == 0, "\(result.standardError)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        let reader = (report["processes"] as? [[String: Any]])?.last
        #expect((reader?["stdout"] as? [String: Any])?["text"] as? String == "through-1023\n", "\(result.standardOutput)")
    }
}
