/// How a run is isolated from the host (``Job/isolation``): new PID, mount, IPC and UTS
/// namespaces (hostname `corral`) with Corral's own init as PID 1, a fresh `/proc`, a new
/// network namespace with only a loopback unless ``network`` is `.host`, and the program
/// as an unprivileged user with no capabilities and `no_new_privs`. Needs root.
public struct Isolation: Sendable, Hashable, Codable {
    public enum Network: String, Sendable, Hashable, Codable, CaseIterable {
        /// A network namespace of its own with only a loopback that is up.
        case none
        /// The host's network.
        case host
    }

    public var network: Network
    /// The program's user and group; 65534 (nobody) by default. 0 only when asked for.
    public var uid: UInt32
    public var gid: UInt32

    public init(network: Network = .none, uid: UInt32 = 65534, gid: UInt32 = 65534) {
        self.network = network
        self.uid = uid
        self.gid = gid
    }
}
