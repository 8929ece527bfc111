import CorralTestSupport
import Foundation
import Testing

@Suite("corral run --spec --file-store")
struct FileStoreCommandTests {
    @Test("a file stored by one run (collect store:true) is used by id by the next, through the same store directory")
    func sameStoreAcrossRuns() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let store = directory.file("store")
        let build = directory.file("build.json")
        try #"""
        {"processes": [{"args": ["/bin/sh", "-c", "printf '#!/bin/sh\\necho from-the-store\\n' > prog; chmod +x prog"]}],
         "collect": [{"path": "prog", "store": true}]}
        """#.write(toFile: build, atomically: true, encoding: .utf8)
        let built = try corral("run", "--quiet", "--spec", build, "--file-store", store)
        #expect(built.status == 0, "\(built.standardError)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(built.standardOutput.utf8)) as? [String: Any])
        let file = try #require((report["files"] as? [[String: Any]])?.first)
        let id = try #require(file["fileId"] as? String, "\(built.standardOutput)")
        #expect(file["executable"] as? Bool == true)
        #expect(FileManager.default.fileExists(atPath: "\(store)/data/\(id)"))

        let use = directory.file("use.json")
        try #"{"processes": [{"args": ["./prog"]}], "files": [{"path": "prog", "fileId": "\#(id)", "executable": true}]}"#
            .write(toFile: use, atomically: true, encoding: .utf8)
        let ran = try corral("run", "--quiet", "--spec", use, "--file-store", store)
        #expect(ran.status == 0, "\(ran.standardError)")
        #expect(ran.standardOutput.contains("from-the-store"), "\(ran.standardOutput)")

        // Without the store, or with another one, the id means nothing: exit 125, before any run.
        let without = try corral("run", "--quiet", "--spec", use)
        #expect(without.status == 125 && without.standardError.contains("no file store"), "\(without.standardError)")
        let other = try corral("run", "--quiet", "--spec", use, "--file-store", directory.file("other"))
        #expect(other.status == 125 && other.standardError.contains("no file \(id)"), "\(other.standardError)")
        let alone = try corral("run", "--file-store", store, "--", "/bin/true")
        #expect(alone.status != 0 && alone.standardError.contains("--file-store goes with --spec"), "\(alone.standardError)")
    }

    @Test("the directories a store makes are 0700, as corral serve requires of its state directory (a store's 0755 parent made the default /var/lib/corral refused)")
    func storeParentsPrivate() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let state = directory.file("state")
        let spec = directory.file("job.json")
        try #"{"processes": [{"args": ["/bin/true"]}]}"#.write(toFile: spec, atomically: true, encoding: .utf8)
        let ran = try corral("run", "--quiet", "--spec", spec, "--file-store", state + "/deeper/files")
        #expect(ran.status == 0, "\(ran.standardError)")
        for path in [state, state + "/deeper", state + "/deeper/files"] {
            let mode = try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
            #expect(mode == 0o700, "\(path): \(String(mode, radix: 8))")
        }
    }
}
