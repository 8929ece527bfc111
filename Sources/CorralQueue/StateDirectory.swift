import Foundation
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// Where Corral keeps what outlives a process (the queue's file, `queue.sqlite`; other parts
/// add their own files beside it): `--state-dir`, else `/var/lib/corral` as root, else
/// `$XDG_STATE_HOME/corral` (`~/.local/state/corral`). An operator's path, trusted; made
/// 0700 when missing, and refused when it is not a directory owned by this user.
public enum StateDirectory {
    public static func defaultPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if geteuid() == 0 { return "/var/lib/corral" }
        if let state = environment["XDG_STATE_HOME"], state.hasPrefix("/") { return state + "/corral" }
        let home = environment["HOME"].flatMap { $0.hasPrefix("/") ? $0 : nil } ?? "/tmp"
        return home + "/.local/state/corral"
    }

    /// Makes `path` (and its missing parents) off the cooperative pool; checks it.
    public static func prepare(_ path: String) async throws(QueueError) {
        do {
            try await NIOThreadPool.singleton.runIfActive { () throws -> Void in try make(path) }
        } catch let error as QueueError {
            throw error
        } catch {
            throw QueueError("the state directory: \(error)")
        }
    }

    private static func make(_ path: String) throws(QueueError) {
        guard path.hasPrefix("/") else { throw QueueError("--state-dir \(path): must be an absolute path") }
        var built = ""
        for component in path.split(separator: "/") {
            built += "/" + component
            if mkdir(built, 0o700) != 0 && errno != EEXIST {
                throw QueueError("cannot make the state directory \(built): \(String(cString: strerror(errno)))")
            }
        }
        var info = stat()
        guard lstat(path, &info) == 0 else { throw QueueError("the state directory \(path): \(String(cString: strerror(errno)))") }
        guard (info.st_mode & S_IFMT) == S_IFDIR else { throw QueueError("the state directory \(path) is not a directory") }
        guard info.st_uid == geteuid() else { throw QueueError("the state directory \(path) belongs to uid \(info.st_uid), not to this user") }
        // The queue's file holds every job's spec and report: no one else may even read it
        // (a program run without isolation, as nobody, would otherwise read other jobs).
        guard info.st_mode & 0o077 == 0 else {
            throw QueueError("the state directory \(path) is open to others (mode \(String(info.st_mode & 0o777, radix: 8))); it must be 0700")
        }
    }
}
