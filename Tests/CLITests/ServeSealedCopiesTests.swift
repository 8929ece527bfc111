import Corral
import CorralTestSupport
import Foundation
import LoopbackHTTP
import Testing

/// `--file-store-copies-max` of `corral serve` (and `corral worker`, the same options): the
/// memory the server keeps in sealed copies of stored inputs that programs which are not
/// isolated read as stdin, seen as the server's own memfd descriptors.
@Suite("corral serve --file-store-copies-max")
struct ServeSealedCopiesTests {
    /// The server's descriptors of kept sealed copies (`memfd:corral-stored`).
    static func keptCopies(_ pid: Int32) -> Int {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
        return fds.filter { ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)")) ?? "").contains("memfd:corral-stored") }.count
    }

    /// Uploads `content`, then runs a step of two tests of `/bin/cat` with it as stdin and answer.
    static func judge(_ server: ServeProcess, _ content: String) throws -> [String: Any] {
        let upload = try HTTPConnection(port: server.port).request("POST", "/v1/files", body: Array(content.utf8))
        #expect(upload.status == 201, "\(String(decoding: upload.body, as: UTF8.self))")
        let id = try #require((try JSONSerialization.jsonObject(with: Data(upload.body)) as? [String: Any])?["id"] as? String)
        let test = #"{"stdin": {"fileId": "\#(id)"}, "answer": {"fileId": "\#(id)"}}"#
        let (status, json, text) = try server.run(#"{"steps": [{"name": "t", "processes": [{"args": ["/bin/cat"], "isolate": false}], "tests": [\#(test), \#(test)], "checker": "exact"}]}"#)
        #expect(status == 200, "\(text)")
        return json
    }

    @Test("the default keeps a copy for the next runs; 0 keeps none and the runs still read the file; a bad size is refused",
          .enabled(if: geteuid() == 0, "stored inputs are sealed copies for plain programs only as root; not root here"))
    func copies() throws {
        let content = String(repeating: "a stored input line\n", count: 5_000)
        let kept = try ServeProcess.start(["--no-isolate"])
        defer { _ = kept.stop() }
        let keptReport = try Self.judge(kept, content)
        #expect((keptReport["summary"] as? [String: Any])?["passed"] as? Int == 2, "\(keptReport)")
        #expect(Self.keptCopies(kept.process.pid) == 1)

        let none = try ServeProcess.start(["--no-isolate", "--file-store-copies-max", "0"])
        defer { _ = none.stop() }
        let noneReport = try Self.judge(none, content)
        #expect((noneReport["summary"] as? [String: Any])?["passed"] as? Int == 2, "\(noneReport)")
        #expect(Self.keptCopies(none.process.pid) == 0)

        let refused = try corral("serve", "--port", "0", "--no-isolate", "--file-store-copies-max", "lots")
        #expect(refused.status != 0 && refused.standardError.contains("file-store-copies-max"), "\(refused.standardError)")
    }
}
