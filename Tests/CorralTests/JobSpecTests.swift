import Corral
import Foundation
import Testing

@Suite("Job specs")
struct JobSpecTests {
    func parse(_ json: String) throws(SpecError) -> JobSpec {
        try JobSpec.parse(Data(json.utf8))
    }

    @Test("an interactive job: two processes and two pipes")
    func interactive() throws {
        let spec = try parse("""
        {"processes": [
          {"name": "solution", "args": ["./sol"], "stdin": {"pipe": "toSolution"}, "stdout": {"pipe": "toInteractor"},
           "limits": {"cpuTime": "500ms", "memory": "64M", "wallTime": 2}},
          {"name": "interactor", "args": ["./int", "x"], "stdin": {"pipe": "toInteractor"}, "stdout": {"pipe": "toSolution"},
           "stderr": {"capture": {"max": "1K"}}, "fds": {"3": {"pipe": "log", "end": "write"}}},
          {"args": ["cat"], "stdin": {"pipe": "log"}, "stdout": "log.txt", "stderr": null}
         ],
         "pipes": ["toSolution", {"name": "toInteractor"}, "log"],
         "files": [{"path": "in/a.txt", "content": "x"}, {"path": "b", "contentBase64": "/wA=", "executable": true, "process": "interactor"}],
         "collect": [{"path": "log.txt", "max": 100, "process": "p2"}, {"path": "out", "process": "solution"}],
         "workdir": {"keep": true}}
        """)
        #expect(spec.processes.map(\.name) == ["solution", "interactor", "p2"])
        #expect(spec.processes[0].limits == Limits(cpuTime: .milliseconds(500), wallTime: .seconds(2), memory: 64 << 20))
        #expect(spec.processes[0].stdin == .pipe("toSolution"))
        #expect(spec.processes[1].stderr == .capture(max: 1024))
        #expect(spec.processes[1].stdout == .pipe("toSolution"))
        #expect(spec.processes[0].stderr == .capture(max: StreamSpec.defaultCaptureMax))
        #expect(spec.processes[1].fds[3] == PipeEndSpec(pipe: "log", end: .write))
        #expect(spec.processes[2].stdout == .file(try SpecPath("log.txt")))
        #expect(spec.processes[2].stderr == .null)
        #expect(spec.processes[2].env == Job.defaultEnvironment)
        #expect(spec.pipes == ["toSolution", "toInteractor", "log"])
        #expect(spec.files[1].source == .content([0xff, 0x00]))
        #expect(spec.files[1].executable)
        #expect(spec.files[0].process == nil && spec.files[1].process == "interactor")
        #expect(spec.collect == [CollectSpec(path: try SpecPath("log.txt"), max: 100, process: "p2"),
                                 CollectSpec(path: try SpecPath("out"), max: 1 << 20, process: "solution")])
        #expect(spec.workdir.keep)
    }

    static let refused: [(String, String)] = [
        (#"{"processes": [{"args": ["a"]}], "extra": 1}"#, "extra: unknown field"),
        (#"{"processes": [{"args": ["a"], "stdn": null}]}"#, "processes[0].stdn: unknown field"),
        (#"{"processes": [{"args": ["a"], "limits": {"cpu": 1}}]}"#, "processes[0].limits.cpu: unknown field"),
        (#"{"processes": [{"args": "a"}]}"#, "processes[0].args: must be an array, not a string"),
        (#"{"processes": [{"args": ["a", 3]}]}"#, "processes[0].args[1]: must be a string, not a number"),
        (#"{"processes": [{"args": []}]}"#, "processes[0].args: must name a program"),
        (#"{"processes": [{"name": "x"}]}"#, "processes[0].args: missing: a process needs a program"),
        (#"{"processes": []}"#, "processes: must hold at least one process"),
        (#"{}"#, "processes: missing"),
        (#"[1]"#, "must be an object, not an array"),
        (#"{"processes": [{"args": ["a"], "limits": {"cpuTime": -1}}]}"#, "processes[0].limits.cpuTime: invalid duration '-1.0': must be greater than zero"),
        (#"{"processes": [{"args": ["a"], "limits": {"memory": "lots"}}]}"#, "processes[0].limits.memory: invalid size 'lots': expected bytes, or a number with K, M or G"),
        (#"{"processes": [{"args": ["a"], "limits": {"memory": "1K"}}]}"#, "processes[0].limits.memory: 1024 bytes is below the smallest memory limit, 1 MiB"),
        (#"{"processes": [{"args": ["a"], "limits": {"processes": 4194305}}]}"#, "processes[0].limits.processes: 4194305 is above the largest pids.max the kernel takes, 4194304"),
        (#"{"processes": [{"args": ["a"], "limits": {"wallTime": true}}]}"#, "processes[0].limits.wallTime: must be a number of seconds or a string like \"500ms\", not a boolean"),
        (#"{"processes": [{"args": ["a"], "stdin": {"pipe": "toSolution"}}], "pipes": []}"#, "processes[0].stdin: unknown pipe \"toSolution\""),
        (#"{"processes": [{"args": ["a"], "stdout": {"pipe": "p"}}, {"args": ["b"], "stdout": {"pipe": "p"}}, {"args": ["c"], "stdin": {"pipe": "p"}}], "pipes": ["p"]}"#,
         "processes[1].stdout: pipe \"p\" already has a writer (processes[0].stdout)"),
        (#"{"processes": [{"args": ["a"], "stdout": {"pipe": "p"}}], "pipes": ["p"]}"#, "pipes[0]: pipe \"p\" has no reader"),
        (#"{"processes": [{"args": ["a"], "stdout": {"content": "x"}}]}"#, "processes[0].stdout.content: unknown field (stdout takes file, pipe or capture)"),
        (#"{"processes": [{"args": ["a"], "stdin": {"file": "a", "pipe": "b"}}]}"#, "processes[0].stdin: must have exactly one of content, contentBase64, file, pipe"),
        (#"{"processes": [{"args": ["a"], "fds": {"1": {"pipe": "p", "end": "write"}}}], "pipes": ["p"]}"#,
         "processes[0].fds.1: descriptor must be a number from 3 to 1023 (0, 1 and 2 are stdin, stdout, stderr)"),
        (#"{"processes": [{"args": ["a"]}, {"name": "p0", "args": ["b"]}]}"#, "processes[1].name: \"p0\" is already the name of processes[0]"),
        (#"{"processes": [{"args": ["a"]}], "collect": [{"path": "../etc/passwd"}]}"#, "collect[0].path: must not contain \"..\""),
        (#"{"processes": [{"args": ["a"]}], "files": [{"path": "/etc/x", "content": ""}]}"#, "files[0].path: must be relative to the working directory, not absolute"),
        // Every path of a spec is a SpecPath: the three streams and dir too.
        (#"{"processes": [{"args": ["a"], "stdin": "../../../../etc/shadow"}]}"#, "processes[0].stdin: must not contain \"..\""),
        (#"{"processes": [{"args": ["a"], "stdout": {"file": "../../etc/x"}}]}"#, "processes[0].stdout.file: must not contain \"..\""),
        (#"{"processes": [{"args": ["a"], "stderr": "/etc/x"}]}"#, "processes[0].stderr: must be relative to the working directory, not absolute"),
        (#"{"processes": [{"args": ["a"], "stdin": "a//b"}]}"#, "processes[0].stdin: must not contain an empty component (\"//\" or a trailing \"/\")"),
        (#"{"processes": [{"args": ["a"], "stdin": "./a"}]}"#, "processes[0].stdin: must not contain \".\" components"),
        (#"{"processes": [{"args": ["a"], "dir": "/tmp"}]}"#, "processes[0].dir: must be relative to the working directory, not absolute"),
        (#"{"processes": [{"args": ["a"], "dir": "x/../.."}]}"#, "processes[0].dir: must not contain \"..\""),
        (#"{"processes": [{"args": ["a"], "stdin": "a\u0000b"}]}"#, "processes[0].stdin: contains a NUL byte"),
        (#"{"processes": [{"args": ["a"], "name": "../x"}]}"#, "processes[0].name: \"../x\" is not a process name: letters, digits, \".\", \"_\" and \"-\", at most 64, not starting with a dot"),
        (#"{"processes": [{"args": ["a"]}, {"args": ["b"]}], "collect": [{"path": "x"}]}"#, "collect[0].process: missing: each process of a job has a directory of its own; say whose file this is"),
        (#"{"processes": [{"args": ["a"]}], "files": [{"path": "x", "content": "", "process": "nobody"}]}"#, "files[0].process: no process is named \"nobody\""),
        (#"{"processes": [{"args": ["a"]}], "workdir": {"keep": "yes"}}"#, "workdir.keep: must be true or false, not a string"),
        // Each collect entry reads its file again after the runs (into the store: hashes and
        // writes it): ten entries of one 60 MiB file held a server slot 6 s past its bound.
        (#"{"processes": [{"args": ["a"]}], "collect": [{"path": "f", "store": true}, {"path": "f"}, {"path": "g"}, {"path": "f", "max": 4}]}"#,
         "collect[3].path: \"f\" is already collected by collect[1]"),
        (#"{"processes": [{"args": ["a"]}], "collect": [{"path": "f", "store": true}, {"path": "f", "store": true}]}"#,
         "collect[1].path: \"f\" is already collected by collect[0] into the store"),
        ("{\"processes\": [{\"args\": [\"a\"]}], \"collect\": [" + (0...JobSpec.maxCollect).map { "{\"path\": \"f\($0)\"}" }.joined(separator: ", ") + "]}",
         "collect: 257 entries, more than the 256 a job may collect"),
    ]

    @Test("a spec that does not validate is refused, naming the field", arguments: refused)
    func refusedSpecs(json: String, message: String) {
        #expect(throws: SpecError.self) { try parse(json) }
        do {
            _ = try parse(json)
        } catch {
            #expect(error.description == message)
        }
    }

    @Test("malformed JSON is refused")
    func malformed() {
        #expect(throws: SpecError.self) { try parse("{\"processes\": [") }
    }

    @Test("a job report encodes each process with its name and every report field")
    func reportEncoding() throws {
        let report = JobReport(status: .ok, processes: [NamedRunReport(name: "a", report: RunReport(status: .ok, message: "m"))],
                               files: [CollectedFile(path: "x", content: CapturedOutput([0xff], truncated: false), error: nil)],
                               workdir: nil, wallTime: 1)
        let object = try #require(try JSONSerialization.jsonObject(with: try JSONEncoder().encode(report)) as? [String: Any])
        let process = try #require((object["processes"] as? [[String: Any]])?.first)
        #expect(process["name"] as? String == "a")
        #expect(process["status"] as? String == "ok")
        let file = try #require((object["files"] as? [[String: Any]])?.first)
        #expect((file["content"] as? [String: Any])?["base64"] as? String == "/w==")
        #expect(try JSONDecoder().decode(JobReport.self, from: try JSONEncoder().encode(report)) == report)
    }
}
