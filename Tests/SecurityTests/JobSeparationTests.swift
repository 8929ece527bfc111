import Corral
import CorralTestSupport
import Foundation
import Testing

/// In the README's interactive example, isolated, the solution read the interactor's hidden
/// answer file and forged the collected `interactor.log`: each process now has a directory
/// of its own and sees only the files given to it.
extension SecurityTests {
@Suite("Processes of one job", .enabled(if: isRoot, Comment(rawValue: needsRoot)))
struct JobSeparationTests {
    @Test("the README's interactive example, isolated: the solution cannot read or change the interactor's files")
    func interactiveExample() async throws {
        // The solution looks for the answer everywhere it can and tries to forge the log.
        let solution = """
        ls -a /box >&2
        cat answer /box/answer ../interactor/answer /box/../interactor/answer 2>/dev/null && echo "read the answer" >&2
        echo "forged: accepted" > interactor.log; echo "forged: accepted" > ../interactor/interactor.log 2>/dev/null
        read question; echo 42
        """
        let interactor = """
        echo what; read reply; [ "$reply" = "$(cat answer)" ] && echo "verdict: ok" > interactor.log || echo "verdict: wrong" > interactor.log
        """
        let report = try await runSpec("""
            {"processes": [
              {"name": "solution", "args": \(shell(solution)), "isolate": true, "limits": {"cpuTime": 1, "wallTime": "10s"},
               "stdin": {"pipe": "toSolution"}, "stdout": {"pipe": "toInteractor"}, "stderr": {"capture": {"max": "4K"}}},
              {"name": "interactor", "args": \(shell(interactor)), "isolate": true, "limits": {"wallTime": 10},
               "stdin": {"pipe": "toInteractor"}, "stdout": {"pipe": "toSolution"}}],
             "pipes": ["toSolution", "toInteractor"],
             "files": [{"path": "answer", "content": "42", "process": "interactor"},
                       {"path": "tests/3.in", "content": "3\\n1 2 3\\n"}],
             "collect": [{"path": "interactor.log", "max": "64K", "process": "interactor"},
                         {"path": "interactor.log", "process": "solution"}]}
            """)
        #expect(report.status == .ok, "\(report.processes.map { "\($0.name): \($0.report.message)" })")
        let listing = report.process("solution")?.stderr?.text ?? ""
        #expect(!listing.contains("read the answer"), "\(listing)")
        #expect(!listing.contains("answer"), "the solution saw the answer file: \(listing)")
        #expect(listing.contains("tests"), "a file given to every process is in each one's directory: \(listing)")
        #expect(report.files.first?.content?.text == "verdict: ok\n")
        #expect(report.files.first?.process == "interactor")
        #expect(report.files.last?.content?.text == "forged: accepted\n")
        #expect(report.files.last?.process == "solution")
    }

    /// Every plain run is nobody by default: a job's directory must keep any other nobody out
    /// (a review found each process's directory reachable through a 0711 job directory).
    @Test("a plain run cannot reach another job's directory, nor collect a file through a hard link")
    func otherJobsAreOutOfReach() async throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let note = tmp.file("where")
        let victim = Task {
            try await runSpec("""
                {"processes": [{"args": \(shell("echo secret > answer; pwd > \(note); sleep 1")), "limits": {"wallTime": 10}}]}
                """)
        }
        var place = ""
        for _ in 0..<300 where place.isEmpty {
            place = ((try? String(contentsOfFile: note, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
            if place.isEmpty { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(!place.isEmpty)
        let attacker = try await Runner().run(Job(arguments: ["/bin/sh", "-c", "cat \(place)/answer; ls \(place)/..; echo done"],
                                                  standardOutput: .capture(max: 4096), standardError: .null))
        #expect(attacker.stdout?.text == "done\n", "\(attacker.stdout?.text ?? "")")
        _ = try await victim.value
        let linked = try await runSpec("""
            {"processes": [{"args": \(shell("echo mine > a; ln a b"))}], "collect": [{"path": "b"}]}
            """)
        #expect(linked.files.first?.error?.contains("hard link") == true, "\(linked.files)")
    }
}
}
