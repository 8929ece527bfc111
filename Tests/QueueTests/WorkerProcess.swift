import CorralTestSupport
import Foundation

/// A `corral worker` process on the test PostgreSQL queue (its URL from a 0600 file, never
/// on a command line), started and waited for ("corral: worker ready").
struct WorkerProcess {
    let process: Spawn.Started

    /// The URL in a file only its owner can read, for --queue-file.
    static func urlFile(_ url: String, in tmp: TemporaryDirectory) throws -> String {
        let path = tmp.path + "/queue-url-\(UUID().uuidString)"
        try Data(url.utf8).write(to: URL(fileURLWithPath: path))
        chmod(path, 0o600)
        return path
    }

    static func start(urlFile: String, _ arguments: [String] = [], environment extra: [String] = []) throws -> WorkerProcess {
        let process = try Spawn.start(corralBinary, ["worker", "--queue-file", urlFile] + arguments,
                                      environment: ["PATH=/usr/bin:/bin"] + extra)
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if process.standardOutputSoFar.contains("corral: worker ready") { return WorkerProcess(process: process) }
            if !Leftovers.isRunning(process.pid) { break }
            usleep(10_000)
        }
        kill(process.pid, SIGKILL)
        let result = process.wait()
        throw FixtureError("corral worker did not start: \(result.standardError)")
    }
}
