/// How a run is isolated from the host (``Job/isolation``): new PID, mount, IPC and UTS
/// namespaces (hostname `corral`) with Corral's own init as PID 1, a new network namespace
/// with only a loopback unless ``network`` is `.host`, a minimal read-only filesystem
/// (see ``MinimalFilesystem``) with the working directory at `/box`, and the program as an
/// unprivileged user with no capabilities and `no_new_privs`. Without root, a user
/// namespace maps the caller's uid and gid (rootless, as bubblewrap does).
public struct Isolation: Sendable, Hashable, Codable {
    public enum Network: String, Sendable, Hashable, Codable, CaseIterable {
        /// A network namespace of its own with only a loopback that is up.
        case none
        /// The host's network.
        case host
    }

    /// A host path made visible inside, read-only unless `writable`.
    public struct Bind: Sendable, Hashable, Codable {
        public var source: String
        public var target: String
        public var writable: Bool

        public init(source: String, target: String? = nil, writable: Bool = false) {
            self.source = source
            self.target = target ?? source
            self.writable = writable
        }
    }

    /// A private tmpfs inside (its pages count against the run's memory).
    public struct Tmpfs: Sendable, Hashable, Codable {
        public var target: String
        public var size: UInt64?

        public init(target: String, size: UInt64? = nil) {
            self.target = target
            self.size = size
        }
    }

    public var network: Network
    /// The program's user and group: by default 65534 (nobody) when Corral runs as root,
    /// and the caller's own when not (rootless isolation maps only the caller's ids). 0
    /// only when asked for.
    public var uid: UInt32?
    public var gid: UInt32?
    /// More mounts, on top of the minimal filesystem.
    public var binds: [Bind]
    public var tmpfs: [Tmpfs]
    /// Keep the host's filesystem (with a fresh /proc) instead of the minimal one.
    public var hostFilesystem: Bool
    /// The seccomp filter; the standard deny list by default.
    public var seccomp: SeccompProfile

    public init(network: Network = .none, uid: UInt32? = nil, gid: UInt32? = nil, binds: [Bind] = [], tmpfs: [Tmpfs] = [],
                hostFilesystem: Bool = false, seccomp: SeccompProfile = .standard) {
        self.network = network
        self.uid = uid
        self.gid = gid
        self.binds = binds
        self.tmpfs = tmpfs
        self.hostFilesystem = hostFilesystem
        self.seccomp = seccomp
    }
}
