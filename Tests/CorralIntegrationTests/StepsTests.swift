import Corral
import CorralTestSupport
import Foundation
import Testing

/// `text` as a JSON string literal.
func jsonLiteral(_ text: String) -> String {
    String(decoding: try! JSONEncoder().encode(text), as: UTF8.self)
}

/// A C solution for the judge tests: reads n, prints 2n; loops forever when n < 0.
let doublerSource = """
#include <stdio.h>
int main(void) { long n; if (scanf("%ld", &n) != 1) return 2; if (n < 0) for (;;) {} printf("%ld\\n", 2 * n); return 0; }
"""

extension IntegrationTests {
@Suite("Steps and tests", .enabled(if: geteuid() == 0, "the judge jobs run their compile step isolated and as nobody: root"))
struct StepsTests {
    func runSteps(_ json: String) async throws -> StepsReport {
        guard case .steps(let spec) = try JobDocument.parse(Data(json.utf8)) else {
            Issue.record("not a job of steps")
            throw FixtureError("not a job of steps")
        }
        let report = try await StepsRunner().run(spec)
        #expect(CgroupCheck.busyRunCgroups().isEmpty)
        return report
    }

    func compileAndTest(isolate: Bool, tests: String, stopOnFirstFailure: Bool = false, extra: String = "") -> String {
        """
        {"steps": [
          {"name": "compile", "processes": [{"args": ["/usr/bin/cc", "-O1", "-o", "sol", "sol.c"], "isolate": \(isolate),
             "limits": {"wallTime": 60, "memory": "512M", "processes": 32}}],
           "files": [{"path": "sol.c", "content": \(jsonLiteral(doublerSource))}]},
          {"name": "test", "processes": [{"args": ["./sol"], "isolate": \(isolate), "limits": {"cpuTime": "500ms", "wallTime": 2}}],
           "files": [{"path": "sol", "fromStep": "compile", "fromPath": "sol"}],
           "stopOnFirstFailure": \(stopOnFirstFailure), \(extra)
           "tests": \(tests)}
        ]}
        """
    }

    @Test("compile a C source, run it on 3 tests: accepted, accepted, wrong-answer", arguments: [true, false])
    func compileThenTest(isolate: Bool) async throws {
        let report = try await runSteps(compileAndTest(isolate: isolate, tests: """
        [{"stdin": {"content": "21\\n"}, "answer": {"content": "42\\n"}},
         {"stdin": {"content": "5"}, "answer": {"content": "10"}},
         {"stdin": {"content": "1\\n"}, "answer": {"content": "3\\n"}}]
        """))
        #expect(report.steps.map(\.name) == ["compile", "test"])
        #expect(report.steps[0].ok, "\(report.steps[0].processes.first?.report.stderr?.text ?? "")")
        #expect(report.steps[1].tests.map(\.verdict) == [.accepted, .accepted, .wrongAnswer])
        #expect(report.steps[1].tests.map(\.name) == ["1", "2", "3"])
        #expect(report.steps[1].tests.allSatisfy { $0.processes[0].report.isolated == isolate })
        #expect(report.summary == TestSummary(tests: 3, run: 3, passed: 2, firstFailure: .init(step: "test", test: "3", verdict: .wrongAnswer)))
        #expect(!report.ok)
        #expect(report.commandExitCode == 1)
    }

    @Test("a time-limit test with stopOnFirstFailure: the tests after it do not run")
    func stopOnFirstFailure() async throws {
        // Each run of the solution leaves a line in a host file: the runs that happened.
        let log = NSTemporaryDirectory() + "corral-steps-log-\(getpid())-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: log, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        defer { try? FileManager.default.removeItem(atPath: log) }
        let json = """
        {"steps": [{"name": "test",
          "processes": [{"args": ["/bin/sh", "-c", "echo ran >> \(log)/runs; read n; if [ $n -lt 0 ]; then while :; do :; done; fi; echo $((n * 2))"],
                         "limits": {"cpuTime": "300ms", "wallTime": 2}}],
          "stopOnFirstFailure": true, "checker": "tokens",
          "tests": [{"stdin": {"content": "1\\n"}, "answer": {"content": "2"}},
                    {"stdin": {"content": "-1\\n"}, "answer": {"content": "0"}},
                    {"stdin": {"content": "3\\n"}, "answer": {"content": "6"}},
                    {"stdin": {"content": "4\\n"}, "answer": {"content": "8"}}]}]}
        """
        let report = try await runSteps(json)
        #expect(report.steps[0].tests.map(\.verdict) == [.accepted, .timeLimit])
        #expect(report.steps[0].tests[1].status == .cpuTimeLimit)
        #expect(report.steps[0].summary == TestSummary(tests: 4, run: 2, passed: 1, firstFailure: .init(step: "test", test: "2", verdict: .timeLimit)))
        let runs = try String(contentsOfFile: "\(log)/runs", encoding: .utf8)
        #expect(runs == "ran\nran\n", "the runs that happened: \(runs.debugDescription)")
    }

    @Test("without stopOnFirstFailure every test runs; runtime, output and memory verdicts")
    func everyTestRuns() async throws {
        let json = """
        {"steps": [{"name": "t",
          "processes": [{"args": ["/bin/sh", "-c", "read n; case $n in 1) exit 3;; 2) exec head -c 1000000 /dev/zero;; 3) echo 6;; 4) kill -SEGV $$;; 5) trap '' XFSZ; head -c 100000 /dev/zero; true;; esac"],
                         "limits": {"cpuTime": 2, "wallTime": 5, "output": "1K"}}],
          "tests": [{"stdin": {"content": "1\\n"}, "answer": {"content": ""}},
                    {"stdin": {"content": "2\\n"}, "answer": {"content": ""}},
                    {"stdin": {"content": "3\\n"}, "answer": {"content": "6\\n"}},
                    {"stdin": {"content": "4\\n"}, "answer": {"content": ""}},
                    {"stdin": {"content": "5\\n"}, "answer": {"content": ""}}]}]}
        """
        let report = try await runSteps(json)
        // The last ignores SIGXFSZ: it ends ok, its output cut past the limit, and is judged so.
        #expect(report.steps[0].tests.map(\.verdict) == [.runtimeError, .outputLimit, .accepted, .runtimeError, .outputLimit])
        #expect(report.steps[0].tests.map(\.status) == [.nonzeroExit, .outputLimit, .ok, .signaled, .ok])
        #expect(report.summary.run == 5)
    }

    @Test("a step that fails stops the job; continueOnFailure goes on")
    func failingStep() async throws {
        let stopped = try await runSteps("""
        {"steps": [{"name": "compile", "processes": [{"args": ["/usr/bin/cc", "-o", "sol", "sol.c"], "limits": {"wallTime": 60}}],
                    "files": [{"path": "sol.c", "content": "this is not C"}]},
                   {"name": "test", "processes": [{"args": ["./sol"]}], "files": [{"path": "sol", "fromStep": "compile", "fromPath": "sol"}],
                    "tests": [{"stdin": {"content": "1"}, "answer": {"content": "2"}}]}]}
        """)
        #expect(stopped.steps.map(\.name) == ["compile"])
        #expect(stopped.steps[0].status == .nonzeroExit)
        #expect(stopped.skipped == ["test"])
        #expect(stopped.summary.run == 0)
        #expect(!stopped.ok)
        #expect(stopped.commandExitCode == 1)

        let continued = try await runSteps("""
        {"steps": [{"name": "lint", "continueOnFailure": true, "processes": [{"args": ["/bin/sh", "-c", "echo made > out; exit 4"]}]},
                   {"name": "next", "processes": [{"args": ["/bin/cat", "in"]}], "files": [{"path": "in", "fromStep": "lint", "fromPath": "out"}]}]}
        """)
        #expect(continued.steps.map(\.ok) == [false, true])
        #expect(continued.steps[1].processes[0].report.stdout?.text == "made\n")
        #expect(continued.skipped.isEmpty)
        #expect(!continued.ok)
    }

    @Test("a custom checker: testlib's exit codes, its stderr the comment, its files read-only")
    func customChecker() async throws {
        let checker = """
        if (echo x >> "$2") 2>/dev/null; then echo "output writable" >&2; exit 3; fi
        read n < "$1"; IFS= read -r got < "$2"; IFS= read -r want < "$3"
        [ "$got" = "$want" ] && exit 0
        [ "$got" = " $want" ] && exit 2
        echo "input $n: got $got, want $want" >&2; exit 1
        """
        let report = try await runSteps("""
        {"steps": [{"name": "t", "processes": [{"args": ["/bin/sh", "-c", "read n; if [ $n = 7 ]; then echo ' 14'; else echo $((n * 2 + (n == 3))); fi"]}],
          "checker": {"type": "custom", "args": ["/bin/sh", "check.sh"], "limits": {"wallTime": 5},
                      "files": [{"path": "check.sh", "content": \(jsonLiteral(checker))}]},
          "tests": [{"stdin": {"content": "2\\n"}, "answer": {"content": "4\\n"}},
                    {"stdin": {"content": "3\\n"}, "answer": {"content": "6\\n"}},
                    {"stdin": {"content": "7\\n"}, "answer": {"content": "14\\n"}}]}]}
        """)
        let tests = report.steps[0].tests
        #expect(tests.map(\.verdict) == [.accepted, .wrongAnswer, .presentationError], "\(tests.map(\.comment))")
        #expect(tests[1].comment == "input 3: got 7, want 6")
        #expect(tests[0].checker?.exitCode == 0)
    }

    @Test("an interactive step: solution and interactor per test, the interactor's exit decides")
    func interactive() async throws {
        let interactor = """
        read n < input; echo "$n"; read r; read a < answer
        [ "$r" = "$a" ] && exit 0
        echo "asked $n, got $r" >&2; exit 1
        """
        let report = try await runSteps("""
        {"steps": [{"name": "i", "interactor": "interactor", "pipes": ["toSolution", "toInteractor"],
          "processes": [
            {"name": "solution", "args": ["/bin/sh", "-c", "read n; if [ $n = 5 ]; then echo 0; else echo $((n * 2)); fi"],
             "stdin": {"pipe": "toSolution"}, "stdout": {"pipe": "toInteractor"}, "limits": {"wallTime": 5}},
            {"name": "interactor", "args": ["/bin/sh", "interact.sh"], "stdin": {"pipe": "toInteractor"}, "stdout": {"pipe": "toSolution"},
             "limits": {"wallTime": 5}}],
          "files": [{"path": "interact.sh", "content": \(jsonLiteral(interactor)), "process": "interactor"}],
          "tests": [{"stdin": {"content": "4\\n"}, "answer": {"content": "8\\n"}},
                    {"stdin": {"content": "5\\n"}, "answer": {"content": "10\\n"}},
                    {"stdin": {"content": "6\\n"}, "answer": {"content": "12\\n"}}]}]}
        """)
        let tests = report.steps[0].tests
        #expect(tests.map(\.verdict) == [.accepted, .wrongAnswer, .accepted], "\(tests.map(\.comment))")
        #expect(tests[1].comment == "asked 5, got 0")
    }
    @Test("nothing one test's program leaves (files, directories, modes) is seen by the next test's",
          arguments: [false, true])
    func testsSeeNothingOfEachOther(isolate: Bool) async throws {
        // Each test lists its directory (must be empty), then leaves files, a directory, a
        // file it made unreadable and a directory it locked (chmod 000) behind.
        let script = "ls -A; echo left > leftover; mkdir -p d/e; echo x > d/e/f; echo y > locked; chmod 000 locked; chmod 000 d"
        let tests = (1...4).map { _ in #"{"stdin": {"content": "x\n"}, "answer": {"content": ""}}"# }.joined(separator: ", ")
        let report = try await runSteps("""
        {"steps": [{"name": "t", "processes": [{"args": ["/bin/sh", "-c", \(jsonLiteral(script))], "isolate": \(isolate), "limits": {"wallTime": 10}}],
          "checker": "exact", "tests": [\(tests)]}]}
        """)
        #expect(report.steps[0].tests.map(\.verdict) == Array(repeating: .accepted, count: 4), "\(report.steps[0].tests.map(\.comment))")
        #expect(report.steps[0].tests.allSatisfy { $0.processes[0].report.status == .ok })
    }

    @Test("a step with more tests than the parser's maximum is refused, naming the step's tests")
    func testsCeiling() throws {
        func steps(_ count: Int) -> Data {
            let tests = Array(repeating: #"{"stdin": {"content": ""}}"#, count: count).joined(separator: ", ")
            return Data(#"{"steps": [{"name": "a", "processes": [{"args": ["/bin/true"]}], "tests": [\#(tests)]}]}"#.utf8)
        }
        let maximum = StepsSpec.defaultMaxTestsPerStep
        #expect(maximum == 1000)
        guard case .steps(let spec) = try JobDocument.parse(steps(maximum)) else { throw FixtureError("not a job of steps") }
        #expect(spec.steps[0].tests.count == maximum)
        #expect { try JobDocument.parse(steps(maximum + 1)) } throws: { error in
            guard let error = error as? SpecError else { return false }
            return error.path == "steps[0].tests" && error.message.contains("1001 tests") && error.message.contains("1000")
        }
        #expect { try JobDocument.parse(steps(3), maxTestsPerStep: 2) } throws: { ($0 as? SpecError)?.path == "steps[0].tests" }
    }

    @Test("a custom checker with a dir is refused (it ran where its input, output and answer were not: every test a checker-error)")
    func checkerDirRefused() throws {
        let json = """
        {"steps": [{"name": "t", "processes": [{"args": ["/bin/cat"]}],
          "checker": {"type": "custom", "args": ["/bin/sh", "-c", "test -f \\"$1\\"", "sh"], "dir": "sub"},
          "tests": [{"stdin": {"content": "1\\n"}, "answer": {"content": "1\\n"}}]}]}
        """
        #expect { try JobDocument.parse(Data(json.utf8)) } throws: { error in
            guard let error = error as? SpecError else { return false }
            return error.path == "steps[0].checker.dir" && error.message.contains("own directory")
        }
    }

    @Test("a test's stdin and answer by fileId: read from the runner's file store")
    func stdinFromTheStore() async throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let store = try FileStore(directory: directory.path + "/store", maxBytes: 1 << 20)
        let input = try store.put(Array("21\n".utf8)).id
        let answer = try store.put(Array("42\n".utf8)).id
        let json = """
        {"steps": [{"name": "t", "processes": [{"args": ["/bin/sh", "-c", "read n; echo $((n * 2))"], "limits": {"wallTime": 5}}],
          "tests": [{"stdin": {"fileId": "\(input)"}, "answer": {"fileId": "\(answer)"}},
                    {"stdin": {"fileId": "\(input)"}, "answer": {"content": "41\\n"}}]}]}
        """
        guard case .steps(let spec) = try JobDocument.parse(Data(json.utf8)) else { throw FixtureError("not a job of steps") }
        let report = try await StepsRunner(jobs: JobRunner(fileStore: store)).run(spec)
        #expect(report.steps[0].tests.map(\.verdict) == [.accepted, .wrongAnswer], "\(report.steps[0].tests.map(\.comment))")
        // Without a store the same spec is refused, naming the id.
        do {
            _ = try await StepsRunner().run(spec)
            Issue.record("a fileId ran without a file store")
        } catch {
            #expect(error.message.contains("fileId") || error.message.contains("store"), "\(error.message)")
        }
    }
}
}
