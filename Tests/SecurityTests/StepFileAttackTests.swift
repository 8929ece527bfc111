import Corral
import CorralTestSupport
import Foundation
import Testing

/// A later step takes a file an earlier step's program wrote: the program decides what that
/// name is. A link out, a FIFO, a directory swapped for a link, a second name of a file: each
/// is performed by the earlier step, and the later step must refuse it (without blocking)
/// and never read what it points at.
extension SecurityTests {
@Suite("Files taken from an earlier step")
struct StepFileAttackTests {
    func attack(_ script: String, fromPath: String = "loot") async throws -> String {
        let json = """
        {"steps": [{"name": "plant", "processes": [{"args": ["/bin/sh", "-c", \(String(decoding: try JSONEncoder().encode(script), as: UTF8.self))]}]},
                   {"name": "take", "processes": [{"args": ["/bin/cat", "taken"]}],
                    "files": [{"path": "taken", "fromStep": "plant", "fromPath": "\(fromPath)"}]}]}
        """
        guard case .steps(let spec) = try JobDocument.parse(Data(json.utf8)) else { throw FixtureError("not steps") }
        let started = ContinuousClock.now
        do throws(CorralError) {
            let report = try await StepsRunner().run(spec)
            Issue.record("the later step ran: \(report.steps.last?.processes.first?.report.stdout?.text ?? "")")
            return ""
        } catch {
            #expect(error.kind == .invalidJob)
            #expect(ContinuousClock.now - started < .seconds(10))
            return error.message
        }
    }

    @Test("a symbolic link to /etc/shadow is not followed")
    func symbolicLink() async throws {
        let message = try await attack("ln -s /etc/shadow loot")
        #expect(message.contains("symbolic link"), "\(message)")
    }

    @Test("a directory that is a link out is not followed")
    func linkedDirectory() async throws {
        let message = try await attack("ln -s /etc d", fromPath: "d/passwd")
        #expect(message.contains("symbolic link"), "\(message)")
    }

    @Test("a FIFO is refused at once (Corral never blocks on it)")
    func fifo() async throws {
        let message = try await attack("mkfifo loot")
        #expect(message.contains("not a regular file"), "\(message)")
    }

    @Test("a file with a second name (a hard link) is refused")
    func hardLink() async throws {
        let message = try await attack("echo mine > f && ln f loot && test -e loot")
        #expect(message.contains("hard link"), "\(message)")
    }

    @Test("a path with .. or an absolute path is refused before anything runs")
    func pathsOut() throws {
        for path in ["../plant/x", "/etc/shadow", "a/../../b"] {
            let json = """
            {"steps": [{"name": "plant", "processes": [{"args": ["/bin/true"]}]},
                       {"name": "take", "processes": [{"args": ["/bin/true"]}], "files": [{"path": "t", "fromStep": "plant", "fromPath": "\(path)"}]}]}
            """
            #expect(throws: SpecError.self) { try JobDocument.parse(Data(json.utf8)) }
        }
        let later = """
        {"steps": [{"name": "a", "processes": [{"args": ["/bin/true"]}], "files": [{"path": "t", "fromStep": "b", "fromPath": "x"}]},
                   {"name": "b", "processes": [{"args": ["/bin/true"]}]}]}
        """
        #expect(throws: SpecError("steps[0].files[0].fromStep", "no earlier step is named \"b\"")) { try JobDocument.parse(Data(later.utf8)) }
    }
}
}
