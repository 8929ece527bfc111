import Corral
import CorralTestSupport
import Foundation
import Testing

/// A hostile tested program of a judge step: it goes after what its test's run is given
/// (its output file, its input, the answer a built-in checker holds) and tries to outlive its
/// run so that it can change the output after the run ends, while the checker reads it.
extension SecurityTests {
@Suite("A tested program of a judge step")
struct TestProgramAttackTests {
    func steps(_ json: String) async throws -> StepsReport {
        guard case .steps(let spec) = try JobDocument.parse(Data(json.utf8)) else { throw FixtureError("not a job of steps") }
        return try await StepsRunner().run(spec)
    }

    @Test("a tested program holds no descriptor but its stdin, stdout and stderr, and can reopen neither its output nor its input to write",
          arguments: [false, true])
    func descriptorsAndReopens(isolate: Bool) async throws {
        // Each line the program prints that is not the answer's is a way in: the checker
        // (exact) then says where. (A redirection of a command run by the shell itself may
        // be made in the shell, so /proc/$$ is read in a subshell.) `ls` lists its own descriptors: 0, 1, 2 and the one it
        // reads /proc/self/fd through.
        let script = """
        (echo x >> /proc/$$/fd/1) 2>/dev/null && echo wrote-output
        (: > /proc/$$/fd/1) 2>/dev/null && echo truncated-output
        [ "$(cat /proc/$$/fd/1 >/dev/null 2>&1; echo $?)" = 0 ] && echo read-output
        (echo x >> /proc/$$/fd/0) 2>/dev/null && echo wrote-input
        ln -L /proc/$$/fd/0 stolen 2>/dev/null && echo linked-input
        exec ls /proc/self/fd
        """
        let report = try await steps("""
        {"steps": [{"name": "t", "processes": [{"args": \(shell(script)), "isolate": \(isolate), "limits": {"wallTime": 10}}],
          "continueOnFailure": true, "checker": "exact", "tests": [{"stdin": {"content": "input\\n"}, "answer": {"content": "0\\n1\\n2\\n3\\n"}},
                                        {"stdin": {"content": "input\\n"}, "answer": {"content": "0\\n1\\n2\\n3\\n"}}]},
                   {"name": "shown", "processes": [{"args": \(shell(script)), "isolate": \(isolate), "limits": {"wallTime": 10}}],
          "checker": {"type": "custom", "args": ["/bin/sh", "-c", "cat \\"$2\\" >&2; exit 1", "checker"]},
          "tests": [{"stdin": {"content": "input\\n"}}]}]}
        """)
        let tests = report.steps[0].tests
        // The second step shows what the program printed (the custom checker's comment).
        let shown = report.steps.last?.tests.first?.comment ?? ""
        #expect(tests.map(\.verdict) == [.accepted, .accepted], "printed: \(shown)")
        #expect(tests.allSatisfy { $0.processes[0].report.status == .ok }, "\(tests.map { $0.processes[0].report.message })")
    }

    @Test("a tested program cannot change the binary later tests and later steps take from the compile step",
          arguments: [false, true])
    func compiledBinaryStays(isolate: Bool) async throws {
        let name = "sol-\(UUID().uuidString)"
        // Each test runs its copy, then rewrites every file of that name it can find (its
        // own copy, and the compile step's if it could reach it) and every one it can
        // reach through another process's working directory.
        let attack = """
        ./\(name)
        for f in $(find /tmp /var/tmp /dev/shm -maxdepth 4 -name \(name) -type f 2>/dev/null) /proc/[0-9]*/cwd/\(name); do
          (printf '#!/bin/sh\\necho hacked\\n' > "$f") 2>/dev/null
        done
        exit 0
        """
        let report = try await steps("""
        {"steps": [{"name": "compile", "processes": [{"args": \(shell("printf '#!/bin/sh\\necho orig\\n' > \(name) && chmod 755 \(name)")), "isolate": \(isolate)}]},
                   {"name": "t", "processes": [{"args": \(shell(attack)), "isolate": \(isolate), "limits": {"wallTime": 20}}],
                    "files": [{"path": "\(name)", "fromStep": "compile", "fromPath": "\(name)"}], "continueOnFailure": true,
                    "checker": "exact", "tests": [{"stdin": {"content": ""}, "answer": {"content": "orig\\n"}},
                                                  {"stdin": {"content": ""}, "answer": {"content": "orig\\n"}},
                                                  {"stdin": {"content": ""}, "answer": {"content": "orig\\n"}}]},
                   {"name": "after", "processes": [{"args": ["./\(name)"], "isolate": \(isolate)}],
                    "files": [{"path": "\(name)", "fromStep": "compile", "fromPath": "\(name)"}]}]}
        """)
        #expect(report.steps.count == 3, "\(report.steps.map(\.name)) skipped \(report.skipped)")
        #expect(report.steps[1].tests.map(\.verdict) == [.accepted, .accepted, .accepted], "\(report.steps[1].tests.map(\.comment))")
        #expect(report.steps.last?.processes.first?.report.stdout?.text == "orig\n",
                "\(report.steps.last?.processes.first?.report.stdout?.text ?? "") \(report.steps.last?.processes.first?.report.message ?? "")")
    }

    @Test("a process the tested program leaves behind (setsid, signals ignored) is gone when the step ends: it cannot change the output afterwards",
          arguments: [false, true])
    func nothingOutlivesTheTest(isolate: Bool) async throws {
        let marker = "corral-outlive-\(UUID().uuidString)"
        // The left process waits for the test's run to end, then writes into the output
        // (the descriptor it inherited) and into a file of its directory, for as long as it lives.
        let script = """
        setsid sh -c 'trap "" HUP INT TERM PIPE; sleep 0.3; while :; do echo wrong; echo wrong >> left; sleep 0.05; done' \(marker) </dev/null 2>/dev/null &
        echo right
        """
        let report = try await steps("""
        {"steps": [{"name": "t", "processes": [{"args": \(shell(script)), "isolate": \(isolate), "limits": {"wallTime": 10}}],
          "checker": "exact", "tests": [{"stdin": {"content": ""}, "answer": {"content": "right\\n"}},
                                        {"stdin": {"content": ""}, "answer": {"content": "right\\n"}}]}]}
        """)
        let tests = report.steps[0].tests
        #expect(tests.map(\.verdict) == [.accepted, .accepted], "\(tests.map(\.comment))")
        func alive() -> [String] {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
            return entries.filter { Int($0) != nil }.filter { pid in
                let cmdline = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
                return String(decoding: cmdline.map { $0 == 0 ? 32 : $0 }, as: UTF8.self).contains(marker)
            }
        }
        #expect(alive().isEmpty, "left alive after the step: \(alive())")
        try await Task.sleep(for: .milliseconds(500))
        #expect(alive().isEmpty, "left alive after the step: \(alive())")
    }
}
}
