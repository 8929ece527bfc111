/// How a ``Runner`` contains its runs.
public struct RunnerConfiguration: Sendable, Hashable {
    public enum ContainmentPreference: String, Sendable, Hashable, CaseIterable {
        /// cgroup v2 when it has the memory and pids controllers, else cgroup v1, else a
        /// process group (with a warning in the report).
        case automatic = "auto"
        case cgroupV2 = "cgroup-v2"
        case cgroupV1 = "cgroup-v1"
        /// A session and process group only: no cgroup.
        case processGroup = "process-group"
    }

    public var containment: ContainmentPreference
    /// Where run cgroups go, relative to each hierarchy's root (e.g. `/delegated/corral`).
    /// By default: a `corral` child of Corral's own cgroup in each hierarchy.
    public var cgroupParent: String?
    /// Refuse to run (setup error) rather than fall back to a process group.
    public var requireCgroup: Bool
    /// As root: uids (with the same gids) for runs that name no user, one leased to each run
    /// while it goes on (``UserLease``), so that concurrent runs cannot signal, trace or read
    /// each other, nor share per-user limits. nil: every such run is nobody (65534).
    public var userRange: ClosedRange<UInt32>?
    /// As root: the `corral-init` executable isolated runs start as their init (exec'd by a
    /// vfork-style clone, far cheaper than a copy of this process). nil: `corral-init` next
    /// to the running executable (`/proc/self/exe`), and where there is none, a fork-style
    /// copy of this process is the init. A path given here must be there. Either way it is
    /// refused (setup error, stage `init`) unless it and every directory above it are owned
    /// by root (or this process's user) and not writable by group or others.
    public var initExecutable: String?

    public init(containment: ContainmentPreference = .automatic, cgroupParent: String? = nil, requireCgroup: Bool = false,
                userRange: ClosedRange<UInt32>? = nil, initExecutable: String? = nil) {
        self.initExecutable = initExecutable
        self.containment = containment
        self.cgroupParent = cgroupParent
        self.requireCgroup = requireCgroup
        self.userRange = userRange
    }
}
