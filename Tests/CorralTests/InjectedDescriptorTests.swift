@testable import Corral
import Foundation
import Testing

/// Descriptors handed to ``JobRunner/runKeepingLayout`` (a test's stdin and stdout) belong to
/// it from the call on: closed whatever happens, also when the job fails before its layout is
/// made (the store's lease refused).
@Suite("Injected descriptors")
struct InjectedDescriptorTests {
    /// Whether every read end of the pipe whose write end is `writeEnd` was closed: `poll` on a
    /// write end reports POLLERR once no reader is left. Waits up to 2 s, since a spawn of
    /// another test may hold a copy of the (close-on-exec) read end for an instant.
    static func readEndClosed(_ writeEnd: Int32) -> Bool {
        let deadline = Date().addingTimeInterval(2)
        repeat {
            var descriptor = pollfd(fd: writeEnd, events: Int16(POLLOUT), revents: 0)
            if poll(&descriptor, 1, 0) == 1, descriptor.revents & Int16(POLLERR) != 0 { return true }
            usleep(10_000)
        } while Date() < deadline
        return false
    }

    @Test("a refused store lease closes the injected descriptors (an unknown file id; a runner without a store)")
    func refusedLeaseClosesInjected() async throws {
        let directory = "/tmp/corral-injected-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let store = try FileStore(directory: directory, maxBytes: 1 << 20)
        let unknown = FileId.of(Array("never stored".utf8))
        let spec = JobSpec(processes: [ProcessSpec(name: "p", args: ["/bin/true"])],
                           files: [FileSpec(path: try SpecPath("in"), source: .stored(unknown))])
        for runner in [JobRunner(fileStore: store), JobRunner()] {
            var ends: [Int32] = [0, 0]
            try #require(pipe(&ends) == 0)
            for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
            defer { close(ends[1]) }
            do {
                _ = try await runner.runKeepingLayout(spec, stop: nil, injected: [0: [0: ends[0]]])
                Issue.record("a job naming an unknown stored file ran")
            } catch {
                #expect(error.kind == .invalidJob, "\(error)")
            }
            #expect(Self.readEndClosed(ends[1]), "the injected read end is still open after the refused lease (store: \(runner.fileStore != nil))")
        }
    }
}
