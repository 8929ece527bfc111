import Corral
import CorralTestSupport
import Foundation
import Testing

private let twoCPUs = Set(CPUList.allowed()?.cpus ?? []).isSuperset(of: [0, 1])

/// `corral run --cpus` and `corral serve --cpus`.
@Suite("--cpus", .enabled(if: twoCPUs, "needs CPUs 0 and 1 in Corral's own affinity"))
struct CPUFlagTests {
    @Test("corral run --cpus 1: the program sees CPU 1 alone (fast path and ArgumentParser alike)")
    func run() throws {
        for words in [["run", "--quiet", "--cpus", "1", "--", "/bin/sh", "-c", "nproc; grep Cpus_allowed_list /proc/self/status"],
                      ["run", "--quiet", "--cpus=1", "/bin/sh", "-c", "nproc; grep Cpus_allowed_list /proc/self/status"]] {
            let result = try Spawn.run(corralPath, words)
            #expect(result.status == 0, "\(result.standardError)")
            #expect(result.standardOutput == "1\nCpus_allowed_list:\t1\n", "\(words): \(result.standardOutput)")
        }
    }

    @Test("corral run --spec --cpus: processes that name no CPUs get them; a process's own must be within them")
    func spec() throws {
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("job.json")
        try Data(#"{"processes": [{"args": ["/bin/grep", "Cpus_allowed_list", "/proc/self/status"]}]}"#.utf8).write(to: URL(fileURLWithPath: path))
        let pinned = try corral("run", "--quiet", "--cpus", "1", "--spec", path)
        #expect(pinned.status == 0, "\(pinned.standardError)")
        let report = try JSONSerialization.jsonObject(with: Data(pinned.standardOutput.utf8)) as? [String: Any]
        let process = (report?["processes"] as? [[String: Any]])?.first
        #expect(((process?["stdout"] as? [String: Any])?["text"] as? String) == "Cpus_allowed_list:\t1\n", "\(pinned.standardOutput)")
        try Data(#"{"processes": [{"args": ["/bin/true"], "cpus": "0"}]}"#.utf8).write(to: URL(fileURLWithPath: path))
        let outside = try corral("run", "--quiet", "--cpus", "1", "--spec", path)
        #expect(outside.status == 125, "\(outside.standardError)")
        #expect(outside.standardError.contains("processes[0].cpus"), "\(outside.standardError)")
    }

    @Test("invalid or unavailable lists are refused: exit 125, one line naming the flag", arguments: ["", "1-0", "x", "4095"])
    func refused(_ list: String) throws {
        let result = try corral("run", "--cpus", list, "--", "/bin/true")
        #expect(result.status == 125, "\(result.standardError)")
        #expect(result.standardError.contains("--cpus"), "\(result.standardError)")
    }

    @Test("corral serve: more slots than --cpus is refused at start")
    func serveSlots() throws {
        let refused = try corral("serve", "--port", "0", "--parallelism", "2", "--cpus", "0")
        #expect(refused.status == 125, "\(refused.standardError)")
        #expect(refused.standardError.contains("--parallelism 2 needs a CPU of its own for each slot"), "\(refused.standardError)")
        let bad = try corral("serve", "--port", "0", "--cpus", "0-")
        #expect(bad.status == 125, "\(bad.standardError)")
        #expect(bad.standardError.contains("--cpus"), "\(bad.standardError)")
    }
}
