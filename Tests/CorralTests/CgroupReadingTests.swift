@testable import Corral
import CorralTestSupport
import Foundation
import Testing

/// The reaper's cheap readers of cgroup files and directories: what they answer must be what
/// the string-based readers they stand in for answered.
struct CgroupReadingTests {
    private func bytes<T>(_ text: String, _ body: (UnsafeRawBufferPointer) -> T) -> T {
        Array(text.utf8).withUnsafeBytes(body)
    }

    @Test("a number file reads as UInt64(text.trimmed) did", arguments: [
        "0", "123\n", "  42 \n", "", "\n", "max\n", "18446744073709551615\n", "18446744073709551616\n",
        "12 34\n", "-1\n", "1x\n", "\t7\r\n",
    ])
    func numbers(_ text: String) {
        #expect(bytes(text) { CgroupFS.parseNumber($0) } == UInt64(text.trimmed))
    }

    @Test("a keyed file's value reads as parseKeyed(text)[key] did", arguments: [
        ("max 0\n", "max"), ("max 12\n", "max"), ("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "oom_kill"),
        ("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "oom"), ("max  7\n", "max"), ("max 7 8\n", "max"),
        ("", "max"), ("max x\n", "max"), ("max 1\nmax 2\n", "max"), ("maximum 5\nmax 6", "max"), ("max\n5\n", "max"),
    ])
    func keyed(_ text: String, _ key: String) {
        #expect(bytes(text) { CgroupFS.parseValue($0, key: key) } == CgroupFS.parseKeyed(text)[key])
    }

    /// A file longer than the stack buffer is read whole, not cut.
    @Test("CgroupFile and CgroupFS read short and long files alike")
    func files() throws {
        let path = NSTemporaryDirectory() + "corral-cgroup-reading-\(getpid())"
        defer { unlink(path) }
        for text in ["5\n", String(repeating: " ", count: 300) + "7\n", "a 1\n" + String(repeating: "b 2\n", count: 100) + "max 9\n"] {
            try text.write(toFile: path, atomically: false, encoding: .utf8)
            let file = try CgroupFile(path)
            #expect(file.readNumber() == UInt64(text.trimmed))
            #expect(CgroupFS.readNumber(path) == UInt64(text.trimmed))
            #expect(file.readValue("max") == CgroupFS.parseKeyed(text)["max"])
            #expect(CgroupFS.readValue(path, key: "max") == CgroupFS.parseKeyed(text)["max"])
        }
        #expect(CgroupFS.readNumber(path + "-missing") == nil)
    }

    /// A leaf cgroup is not listed: its link count says it has no child. One with a child is.
    @Test("a cgroup's link count tells a leaf from a parent", .enabled(if: CgroupCheck.hasV1, "needs root and cgroup v1 pids"))
    func leaves() throws {
        let hierarchy = try #require(CgroupHost.current.v1["pids"])
        let directory = CgroupV1Run.parentDirectory(hierarchy, override: nil) + "-reading-test-\(getpid())"
        try CgroupFS.makeDirectory(directory, existingIsFine: false)
        defer { CgroupTree.remove(directory) }
        #expect(!CgroupTree.mayHaveChildren(directory))
        #expect(!CgroupTree.hasChildren(directory))
        #expect(CgroupTree.descendants(of: directory).isEmpty)
        try CgroupFS.makeDirectory(directory + "/inner", existingIsFine: false)
        try CgroupFS.makeDirectory(directory + "/inner/deeper", existingIsFine: false)
        #expect(CgroupTree.mayHaveChildren(directory))
        #expect(CgroupTree.hasChildren(directory))
        #expect(CgroupTree.descendants(of: directory) == [directory + "/inner/deeper", directory + "/inner"])
        #expect(CgroupTree.remove(directory) == 0)
        #expect(!CgroupFS.exists(directory))
        // Not a cgroup directory: listed as before.
        #expect(CgroupTree.mayHaveChildren("/nonexistent-\(getpid())"))
    }
}
