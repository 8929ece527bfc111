#if canImport(Glibc)
import Glibc
#endif

/// The user and group a program runs as.
///
/// When Corral runs as root, a program never runs as root unless asked for: by default it
/// runs as nobody (65534:65534), isolated or not, with no supplementary groups, no
/// capabilities and `no_new_privs`, so that it cannot leave its cgroups, signal or trace
/// Corral, or write what root owns. Without root it runs as Corral's own user (rootless
/// isolation maps only that one).
public struct RunUser: Sendable, Hashable, Codable, CustomStringConvertible {
    public var uid: UInt32
    public var gid: UInt32

    public init(uid: UInt32, gid: UInt32? = nil) {
        self.uid = uid
        self.gid = gid ?? uid
    }

    public static let nobody = RunUser(uid: 65534, gid: 65534)

    /// Who runs a job: asked for (``Job/user``, or an isolation's own uid and gid), else
    /// nobody as root, else the caller.
    static func of(_ job: Job) -> RunUser {
        if let user = job.user { return user }
        if let isolation = job.isolation, let uid = isolation.uid { return RunUser(uid: uid, gid: isolation.gid) }
        return geteuid() == 0 ? .nobody : RunUser(uid: getuid(), gid: getgid())
    }

    public var description: String { "\(uid):\(gid)" }
}
