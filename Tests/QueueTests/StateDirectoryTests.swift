import CorralTestSupport
import Foundation
import Testing

/// The queue's file holds every job's spec and report. A state directory that others can
/// read would let a program run without isolation (as nobody) read other jobs: the server
/// refuses to start on one.
@Suite("the state directory is the server's alone")
struct StateDirectoryTests {
    @Test("corral serve refuses a state directory others can read (0755): exit 125, no queue file made")
    func refusesReadableStateDirectory() throws {
        let parent = TemporaryDirectory()
        defer { parent.remove() }
        let state = parent.path + "/state"
        #expect(mkdir(state, 0o755) == 0)
        #expect(chmod(state, 0o755) == 0)
        let result = try Spawn.run(corralBinary, ["serve", "--port", "0", "--no-isolate", "--seccomp", "none", "--state-dir", state])
        #expect(result.status == 125, "\(result.standardError)")
        #expect(result.standardError.contains("open to others"), "\(result.standardError)")
        #expect(!FileManager.default.fileExists(atPath: state + "/queue.sqlite"))
    }
}
