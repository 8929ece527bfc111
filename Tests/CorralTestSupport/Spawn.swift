import Foundation
import Synchronization

/// Starts helper processes for tests (the compiler, the `corral` binary) with posix_spawn
/// and waits for that one pid, so nothing here competes with Corral's own reaper.
public enum Spawn {
    public struct Result: Sendable {
        public let status: Int32
        /// The raw wait status, for signal checks.
        public let rawStatus: Int32
        public let standardOutput: String
        public let standardError: String
    }

    /// A started process. One that a test never waits for (it failed before it could) is
    /// killed and reaped, and its output files removed, when the last reference goes.
    public final class Started: Sendable {
        public let pid: pid_t
        let stdoutPath: String
        let stderrPath: String
        private let waited = Atomic<Bool>(false)

        init(pid: pid_t, stdoutPath: String, stderrPath: String) {
            self.pid = pid
            self.stdoutPath = stdoutPath
            self.stderrPath = stderrPath
        }

        deinit {
            guard !waited.load(ordering: .relaxed) else { return }
            kill(pid, SIGKILL)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            unlink(stdoutPath)
            unlink(stderrPath)
        }

        /// What the process has written to stdout so far.
        public var standardOutputSoFar: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
        /// What the process has written to stderr so far.
        public var standardErrorSoFar: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

        /// Waits for the process and collects what it wrote. A process still running after
        /// `timeout` seconds is killed (and its status says so), so a hang fails a test
        /// instead of stalling the suite.
        public func wait(timeout: Double = 120) -> Result {
            waited.store(true, ordering: .relaxed)
            var status: Int32 = 0
            let deadline = Date().addingTimeInterval(timeout)
            while true {
                let result = waitpid(pid, &status, WNOHANG)
                if result == pid { break }
                if result < 0 && errno != EINTR { break }
                if Date() > deadline {
                    kill(pid, SIGKILL)
                    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                    break
                }
                usleep(5_000)
            }
            let out = (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? ""
            let err = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
            unlink(stdoutPath)
            unlink(stderrPath)
            let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            return Result(status: code, rawStatus: status, standardOutput: out, standardError: err)
        }
    }

    /// Starts `path` with `arguments`; stdin from /dev/null, stdout and stderr to files.
    public static func start(_ path: String, _ arguments: [String], environment: [String]? = nil) throws -> Started {
        let base = NSTemporaryDirectory() + "corral-spawn-\(getpid())-\(UUID().uuidString)"
        let stdoutPath = base + ".out"
        let stderrPath = base + ".err"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let env = (environment ?? ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" }).map { strdup($0) } + [nil]
        defer { env.forEach { free($0) } }
        var pid: pid_t = 0
        let error = posix_spawn(&pid, path, &actions, nil, argv, env)
        guard error == 0 else {
            throw FixtureError("posix_spawn \(path): \(String(cString: strerror(error)))")
        }
        return Started(pid: pid, stdoutPath: stdoutPath, stderrPath: stderrPath)
    }

    /// Runs `path` with stdout on a pipe whose reader is already gone (as under `| head`
    /// once head has exited): every write to it fails with EPIPE, or raises SIGPIPE.
    /// `standardOutput` is always empty.
    public static func runWithoutStdoutReader(_ path: String, _ arguments: [String]) throws -> Result {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw FixtureError("pipe: \(String(cString: strerror(errno)))") }
        close(ends[0])
        _ = fcntl(ends[1], F_SETFD, FD_CLOEXEC)
        defer { close(ends[1]) }
        let base = NSTemporaryDirectory() + "corral-spawn-\(getpid())-\(UUID().uuidString)"
        let stderrPath = base + ".err"
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, ends[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let error = posix_spawn(&pid, path, &actions, nil, argv, environ)
        guard error == 0 else { throw FixtureError("posix_spawn \(path): \(String(cString: strerror(error)))") }
        // No stdout file is ever made at `base.out`: the result's stdout is empty.
        return Started(pid: pid, stdoutPath: base + ".out", stderrPath: stderrPath).wait()
    }

    public static func run(_ path: String, _ arguments: [String], environment: [String]? = nil) throws -> Result {
        try start(path, arguments, environment: environment).wait()
    }
}
