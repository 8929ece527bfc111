import Corral
import CorralTestSupport
import Foundation
import Testing

/// A capture that is valid UTF-8 was given as text, and JSON spells each control character
/// but five as `\u00XX`: 1 MiB of NULs was 6 MiB of report, so the job's report budget
/// (256 MiB of captures) was 1.5 GiB of JSON in a server's memory and on the wire. Output
/// whose escapes would cost more than base64 (past 4 KiB) is now base64 (4 bytes for 3);
/// text with a stray one stays text. A checker's comment is text without them.
extension SecurityTests {
@Suite("What a capture of control characters costs as JSON")
struct CaptureEncodingAttackTests {
    static let size = 1 << 20
    static let spec = #"{"processes": [{"args": ["/usr/bin/head", "-c", "\#(size)", "/dev/zero"], "stdout": {"capture": {"max": "2M"}}}]}"#

    /// The report's JSON is under 1.4 times the bytes captured, and its stdout gives them back.
    func expectCompact(_ text: String, _ report: [String: Any], sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(text.utf8.count < Self.size * 14 / 10, "a report of \(text.utf8.count) bytes for \(Self.size) NULs",
                sourceLocation: sourceLocation)
        let processes = try #require(report["processes"] as? [[String: Any]], "\(text.prefix(500))", sourceLocation: sourceLocation)
        let stdout = try #require(processes.first?["stdout"] as? [String: Any], sourceLocation: sourceLocation)
        #expect(stdout["text"] == nil, sourceLocation: sourceLocation)
        let base64 = try #require(stdout["base64"] as? String, sourceLocation: sourceLocation)
        #expect(Data(base64Encoded: base64) == Data(count: Self.size), sourceLocation: sourceLocation)
        #expect(stdout["bytes"] as? Int == Self.size, sourceLocation: sourceLocation)
    }

    @Test("library: 1 MiB of NULs is base64 in the report; a stray NUL in text, or a short output of NULs, stays text")
    func library() async throws {
        let report = try await runSpec(Self.spec)
        #expect(report.status == .ok)
        let stdout = try #require(report.processes.first?.report.stdout)
        #expect(stdout.text == nil && stdout.base64 != nil)
        #expect(stdout.data == Array(repeating: 0, count: Self.size))
        let json = try JSONEncoder().encode(report)
        try expectCompact(String(decoding: json, as: UTF8.self), try #require(JSONSerialization.jsonObject(with: json) as? [String: Any]))

        let mixed = try await runSpec(#"{"processes": [{"args": \#(shell(#"printf 'a line\000 with a NUL\nand\ttabs\n'"#)), "stdout": {"capture": {}}}]}"#)
        #expect(mixed.processes.first?.report.stdout?.text == "a line\0 with a NUL\nand\ttabs\n")
        // Short output stays text however many NULs it has (a /proc/PID/cmdline, say).
        let short = try await runSpec(#"{"processes": [{"args": \#(shell(#"printf 'corral-init\000\000'"#)), "stdout": {"capture": {}}}]}"#)
        #expect(short.processes.first?.report.stdout?.text == "corral-init\0\0")
        // Text of short lines stays text (each newline is two bytes of JSON, not six).
        let lines = try await runSpec(#"{"processes": [{"args": \#(shell("yes | head -c 65536")), "stdout": {"capture": {}}}]}"#)
        #expect(lines.processes.first?.report.stdout?.text?.hasPrefix("y\ny\n") == true)
    }

    @Test("corral run --spec: the report of 1 MiB of NULs is under 1.4 MiB")
    func commandLine() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("job.json")
        try Self.spec.write(toFile: path, atomically: true, encoding: .utf8)
        let result = try Spawn.run(corralBinary, ["run", "--spec", path])
        #expect(result.status == 0, "\(result.standardError)")
        try expectCompact(result.standardOutput, try #require(JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any]))
    }

    @Test("corral serve (isolated, as it starts by default): the answer to 1 MiB of NULs is under 1.4 MiB", .enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func server() throws {
        let server = try ServeProcess.start([])
        defer { server.stop() }
        let answer = try server.run(Self.spec)
        #expect(answer.status == 200, "\(answer.text.prefix(500))")
        try expectCompact(answer.text, answer.json)
    }

    @Test("a custom checker's stderr of NULs: the test's comment is text without control characters, at most 4 KiB")
    func checkerComment() async throws {
        // The comment is text in every test's report, beside the checker's own base64 stderr:
        // 4 KiB of NULs were 24 KiB of JSON per test, 50 tests 1.5 MB.
        let json = #"""
        {"steps": [{"name": "t", "processes": [{"args": ["/bin/true"]}],
          "checker": {"type": "custom", "args": ["/bin/sh", "-c", "head -c 8192 /dev/zero >&2; exit 1", "checker"]},
          "tests": [{"stdin": {"content": ""}}, {"stdin": {"content": ""}}]}]}
        """#
        guard case .steps(let spec) = try JobDocument.parse(Data(json.utf8)) else { throw FixtureError("not a job of steps") }
        let report = try await StepsRunner().run(spec)
        let tests = try #require(report.steps.first?.tests)
        #expect(tests.count == 2)
        for test in tests {
            #expect(test.verdict == .wrongAnswer)
            #expect(test.comment.utf8.count <= 4096 && !test.comment.utf8.contains { $0 < 0x20 && $0 != 0x09 && $0 != 0x0A }, "\(test.comment.prefix(40))")
        }
        let encoded = try JSONEncoder().encode(report)
        // Each test: the checker's 8 KiB of stderr as base64 (about 11 KiB) and the comment.
        #expect(encoded.count < 2 * 20_000, "\(encoded.count) bytes of report")
    }
}
}
