#if canImport(Glibc)
import Glibc
#endif

/// What the host offers Corral: `corral doctor`, and the server's `/v1/doctor`.
public struct HostReport: Sendable, Hashable, Codable {
    public struct CgroupV1Hierarchy: Sendable, Hashable, Codable {
        public var controller: String
        public var mount: String
        public var ownCgroup: String
    }

    public struct CgroupV2Hierarchy: Sendable, Hashable, Codable {
        public var mount: String
        public var ownCgroup: String
        /// Controllers available to Corral's own cgroup.
        public var controllers: [String]
        /// It has the memory and pids controllers, so runs with limits can use it.
        public var hasRunControllers: Bool
    }

    public struct Cgroups: Sendable, Hashable, Codable {
        public var v2: CgroupV2Hierarchy?
        /// The v1 hierarchies Corral uses (memory, pids, cpuacct, freezer) that are mounted.
        public var v1: [CgroupV1Hierarchy]
        /// What `--containment auto` uses here: `cgroup-v2`, `cgroup-v1` or `process-group`.
        public var selected: Containment
        /// A run cgroup could be created and removed (checked for real).
        public var usable: Bool
        /// Why not, when it could not.
        public var problem: String?
    }

    public struct Seccomp: Sendable, Hashable, Codable {
        /// The kernel has seccomp filters.
        public var available: Bool
        /// The filter actions the kernel offers (`/proc/sys/kernel/seccomp/actions_avail`).
        public var actions: [String]
        /// `libseccomp.so.2` can be loaded.
        public var libseccomp: Bool
        /// This process can read the kernel's audit records (root: the audit netlink socket;
        /// otherwise the kernel's log, if readable), so a `syscall-violation` names the call
        /// (``SeccompAudit``).
        public var killsNamed: Bool
    }

    public var kernel: String
    public var cgroups: Cgroups
    /// Namespace types this kernel has (from /proc/self/ns).
    public var namespaces: [String]
    /// `user.max_user_namespaces`; 0 means user namespaces are off.
    public var maxUserNamespaces: Int?
    public var seccomp: Seccomp
    public var isRoot: Bool
    /// What `--isolate` can do here: `root` (namespaces, nobody), `rootless` (a user namespace
    /// mapping the caller), or `unavailable`; and whether the seccomp filter can be built.
    public var isolation: String
    public var isolationSeccomp: Bool
    /// Every run can be contained by a cgroup.
    public var fullContainment: Bool
    /// Whether a run after an idle moment waits for an RCU grace period to join its cgroup.
    public var coldMigration: ColdMigration

    /// Inspects the host. Creates and removes one probe cgroup to prove it works.
    public static func inspect(configuration: RunnerConfiguration = RunnerConfiguration()) -> HostReport {
        let host = CgroupHost.current
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: name.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }

        let v2 = host.unified.map {
            CgroupV2Hierarchy(mount: $0.mount, ownCgroup: $0.ownPath, controllers: $0.controllers.sorted(),
                              hasRunControllers: host.v2HasControllers)
        }
        let v1 = CgroupHost.v1Controllers.compactMap { controller in
            host.v1[controller].map { CgroupV1Hierarchy(controller: controller, mount: $0.mount, ownCgroup: $0.ownPath) }
        }
        var problem: String?
        var selected = Containment.processGroup
        var probe = configuration
        probe.requireCgroup = true
        switch CgroupSetup.make(for: Job(arguments: ["probe"]), configuration: probe) {
        case .cgroup(let cgroup):
            selected = cgroup.containment
            cgroup.closeJoinDescriptors()
            cgroup.remove()
        case .processGroup(let warning): problem = warning
        case .failure(let failure): problem = failure.message
        }

        let namespaces = CgroupFS.entriesIncludingFiles(of: "/proc/self/ns").filter { !$0.hasSuffix("_for_children") }.sorted()
        let maxUser = CgroupFS.readNumber("/proc/sys/user/max_user_namespaces").map { Int($0) }
        let actions = CgroupFS.read("/proc/sys/kernel/seccomp/actions_avail")?
            .split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init) ?? []
        let handle = dlopen("libseccomp.so.2", RTLD_NOW | RTLD_LOCAL)
        if let handle { dlclose(handle) }
        let needed = ["pid", "mnt", "ipc", "uts", "net"]
        let hasNamespaces = needed.allSatisfy(namespaces.contains)
        let isolation = !hasNamespaces ? "unavailable"
            : geteuid() == 0 ? "root"
            : (namespaces.contains("user") && (maxUser ?? 0) > 0) ? "rootless" : "unavailable"

        return HostReport(
            kernel: release,
            cgroups: Cgroups(v2: v2, v1: v1, selected: selected, usable: problem == nil, problem: problem),
            namespaces: namespaces,
            maxUserNamespaces: maxUser,
            seccomp: Seccomp(available: !actions.isEmpty, actions: actions, libseccomp: handle != nil,
                             killsNamed: SeccompAudit.listen().map { $0.close() } != nil),
            isRoot: geteuid() == 0,
            isolation: isolation,
            isolationSeccomp: handle != nil && !actions.isEmpty,
            fullContainment: problem == nil,
            coldMigration: ColdMigration.inspect(selected: selected)
        )
    }
}
