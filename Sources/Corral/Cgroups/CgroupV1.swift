import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A run's cgroups on v1: a directory in each of the memory, pids, cpuacct and freezer
/// hierarchies, and in the cpuset hierarchy when the run asks for CPUs.
///
/// The memory cgroup is new for every run, so its limit, peak and OOM count are the run's
/// alone (pages a run leaves in the page cache stay charged to its cgroup, and reclaiming
/// them costs more than a new directory). The pids, cpuacct and freezer cgroups, which
/// carry nothing over once empty, come from a small pool of emptied sets (``SharedSet``)
/// with their control files kept open: creating and removing three directories costs as
/// much as the rest of a short run.
final class CgroupV1Run: RunCgroup, @unchecked Sendable {
    let containment = Containment.cgroupV1
    /// The memory cgroup's name, unique to this run.
    let name: String
    private let memoryDirectory: String
    private let memoryProcs: CgroupFile
    private let shared: SharedSet
    /// The run's own cpuset (``CgroupCpuset``), when it asked for CPUs.
    private let cpuset: (directory: String, procs: CgroupFile)?
    let joinDescriptors: [Int32]

    /// The pids, cpuacct and freezer cgroups of a run, reusable once empty.
    final class SharedSet: @unchecked Sendable {
        let name: String
        let directories: [String: String]
        let poolKey: String
        let membershipSuffix: String
        let procsFiles: [CgroupFile]
        let cpuUser: CgroupFile
        let cpuSystem: CgroupFile
        let cpuReset: CgroupFile
        let pidsMax: CgroupFile
        let pidsEvents: CgroupFile
        let freezerState: CgroupFile
        /// Read by path, never through a kept descriptor: v1 caches the pid list of an
        /// open `cgroup.procs` for a second, so a re-read could be stale.
        let pidsDirectory: String
        let freezerDirectory: String
        var currentProcessLimit: UInt64?
        var killed = false

        init(name: String, directories: [String: String], poolKey: String, membershipSuffix: String) throws(CgroupError) {
            self.name = name
            self.directories = directories
            self.poolKey = poolKey
            self.membershipSuffix = membershipSuffix
            let pids = directories["pids"]!, cpuacct = directories["cpuacct"]!, freezer = directories["freezer"]!
            procsFiles = try [pids, cpuacct, freezer].map { directory throws(CgroupError) in
                try CgroupFile(directory + "/cgroup.procs", writable: true)
            }
            cpuUser = try CgroupFile(cpuacct + "/cpuacct.usage_user")
            cpuSystem = try CgroupFile(cpuacct + "/cpuacct.usage_sys")
            cpuReset = try CgroupFile(cpuacct + "/cpuacct.usage", writable: true)
            pidsMax = try CgroupFile(pids + "/pids.max", writable: true)
            pidsEvents = try CgroupFile(pids + "/pids.events")
            freezerState = try CgroupFile(freezer + "/freezer.state", writable: true)
            pidsDirectory = pids
            freezerDirectory = freezer
        }

        /// Removes the three directories, with any sub-cgroups the run's program made.
        func destroy() {
            for controller in ["freezer", "cpuacct", "pids"] {
                CgroupTree.remove(directories[controller]!)
            }
        }

        /// Whether the run's program made a cgroup below any of the three.
        var hasSubCgroups: Bool {
            directories.values.contains { CgroupTree.hasChildren($0) }
        }
    }

    private static let pools = Mutex<[String: [SharedSet]]>([:])
    private static let poolSize = 4
    private static let preparedParents = Mutex<Set<String>>([])
    private static let sharedControllers = ["pids", "cpuacct", "freezer"]

    private init(name: String, memoryDirectory: String, memoryProcs: CgroupFile, shared: SharedSet,
                 cpuset: (directory: String, procs: CgroupFile)?) {
        self.name = name
        self.memoryDirectory = memoryDirectory
        self.memoryProcs = memoryProcs
        self.shared = shared
        self.cpuset = cpuset
        // The cpuset last: joining it sets the affinity, which the child then sets itself.
        joinDescriptors = [memoryProcs.descriptor] + shared.procsFiles.map(\.descriptor) + (cpuset.map { [$0.procs.descriptor] } ?? [])
    }

    /// The parent directory of the runs in one hierarchy: `PARENT` (relative to the
    /// hierarchy's root) or, by default, `corral` below this process's own cgroup.
    static func parentDirectory(_ hierarchy: CgroupHost.Hierarchy, override: String?) -> String {
        let relative = override ?? ((hierarchy.ownPath == "/" ? "" : hierarchy.ownPath) + "/corral")
        return hierarchy.mount + (relative.hasPrefix("/") ? relative : "/" + relative)
    }

    /// The cgroups for one run, with its limits written.
    static func acquire(host: CgroupHost, parent override: String?, name: () -> String, limits: Limits,
                        cpus: CPUList? = nil) throws(CgroupError) -> CgroupV1Run {
        let key = override ?? ""
        guard let memory = host.v1["memory"] else { throw CgroupError("no cgroup v1 memory hierarchy is mounted") }
        let runName = name()
        let memoryDirectory = try makeRunDirectory(memory, override: override, name: runName)
        var shared: SharedSet?
        var cpusetDirectory: String?
        do throws(CgroupError) {
            if let bytes = limits.memory {
                try CgroupFS.write(memoryDirectory + "/memory.limit_in_bytes", String(bytes))
                if CgroupFS.exists(memoryDirectory + "/memory.memsw.limit_in_bytes") {
                    try CgroupFS.write(memoryDirectory + "/memory.memsw.limit_in_bytes", String(bytes))
                }
            }
            let procs = try CgroupFile(memoryDirectory + "/cgroup.procs", writable: true)
            if let pooled = pools.withLock({ $0[key]?.popLast() }) {
                shared = pooled
            } else {
                shared = try createShared(host: host, parent: override, name: runName, poolKey: key)
            }
            if limits.processes != shared!.currentProcessLimit {
                try shared!.pidsMax.write(limits.processes.map { String($0) } ?? "max")
                shared!.currentProcessLimit = limits.processes
            }
            var cpuset: (directory: String, procs: CgroupFile)?
            if let cpus {
                guard let hierarchy = host.v1["cpuset"] else {
                    throw CgroupError("no cgroup v1 cpuset hierarchy is mounted, so the program could widen its CPUs; cpus needs one with cgroup containment")
                }
                cpusetDirectory = try CgroupCpuset.makeV1(hierarchy, parent: override, name: runName, cpus: cpus)
                cpuset = (cpusetDirectory!, try CgroupFile(cpusetDirectory! + "/cgroup.procs", writable: true))
            }
            return CgroupV1Run(name: runName, memoryDirectory: memoryDirectory, memoryProcs: procs, shared: shared!, cpuset: cpuset)
        } catch {
            if let cpusetDirectory { CgroupFS.removeDirectory(cpusetDirectory) }
            shared?.destroy()
            CgroupFS.removeDirectory(memoryDirectory)
            throw error
        }
    }

    /// Creates `name` below the parent in one hierarchy. Another Corral process may remove
    /// an idle parent at its exit at any moment, so a missing parent is created again.
    private static func makeRunDirectory(_ hierarchy: CgroupHost.Hierarchy, override: String?, name: String) throws(CgroupError) -> String {
        let parent = parentDirectory(hierarchy, override: override)
        let directory = parent + "/" + name
        var attempts = 0
        while true {
            if !preparedParents.withLock({ $0.contains(parent) }) {
                try CgroupFS.makeDirectories(parent, below: hierarchy.mount)
                preparedParents.withLock { _ = $0.insert(parent) }
                CgroupParents.register(parent)
            }
            if mkdir(directory, 0o755) == 0 { return directory }
            let error = errno
            attempts += 1
            guard error == ENOENT, attempts < 5 else { throw CgroupFS.failure("mkdir", directory, error) }
            preparedParents.withLock { _ = $0.remove(parent) }
        }
    }

    private static func createShared(host: CgroupHost, parent override: String?, name: String, poolKey: String) throws(CgroupError) -> SharedSet {
        var created: [String] = []
        var directories: [String: String] = [:]
        do throws(CgroupError) {
            for controller in sharedControllers {
                guard let hierarchy = host.v1[controller] else { throw CgroupError("no cgroup v1 \(controller) hierarchy is mounted") }
                let directory = try makeRunDirectory(hierarchy, override: override, name: name)
                created.append(directory)
                directories[controller] = directory
            }
            let relative = String(directories["pids"]!.dropFirst(host.v1["pids"]!.mount.count))
            return try SharedSet(name: name, directories: directories, poolKey: poolKey, membershipSuffix: ":pids:" + relative)
        } catch {
            created.reversed().forEach { CgroupFS.removeDirectory($0) }
            throw error
        }
    }

    func closeJoinDescriptors() {}

    /// v1 directories cannot be cloned into (EBADF): the child joins through `cgroup.procs`.
    var cloneDirectory: Int32 { -1 }

    func isMember(_ pid: Int32) -> Bool { procCgroupContains(pid, shared.membershipSuffix) }

    /// The run's processes, in its pids cgroup and any cgroup its program made below it.
    func members() -> [Int32] { CgroupTree.pids(shared.pidsDirectory) }

    /// The total is `cpuacct.usage` (nanoseconds, exact); `usage_user` and `usage_sys` are
    /// sampled at the scheduler tick, so they only split the total between user and system.
    func cpu() -> CgroupCPU? {
        guard let total = shared.cpuReset.readNumber() else { return nil }
        let user = shared.cpuUser.readNumber() ?? 0, system = shared.cpuSystem.readNumber() ?? 0
        let userShare = user + system > 0 ? Double(user) / Double(user + system) : 1
        let userMicros = Int64((Double(total) * userShare / 1000).rounded())
        return CgroupCPU(total: Int64(total / 1000), user: userMicros, system: Int64(total / 1000) - userMicros)
    }

    func cpuTotal() -> Int64? { shared.cpuReset.readNumber().map { Int64($0 / 1000) } }

    func memoryPeak() -> UInt64? { CgroupFS.readNumber(memoryDirectory + "/memory.max_usage_in_bytes") }

    /// Not sampled: v1 keeps the peak itself.
    func memoryCurrent() -> UInt64? { nil }

    func memoryEvents() -> CgroupMemoryEvents? { CgroupMemoryEvents.v1(memoryDirectory) }

    func oomKills() -> UInt64 { CgroupFS.readValue(memoryDirectory + "/memory.oom_control", key: "oom_kill") ?? 0 }

    func processLimitHits() -> UInt64 { shared.pidsEvents.readValue("max") ?? 0 }

    /// Every process of the run joined all four cgroups before exec and its children
    /// inherit them, so the freezer's tree (its cgroup and any its program made below it)
    /// is the run's; freezing the run's cgroup freezes those below it too.
    func killAll() -> [Int32] {
        let freezer = shared.freezerDirectory
        guard !CgroupTree.pids(freezer).isEmpty else { return [] }
        shared.killed = true
        let state = shared.freezerState
        return freezeAndKill(
            members: { CgroupTree.pids(freezer) },
            freeze: { (try? state.write("FROZEN")) != nil },
            isFrozen: { state.read()?.trimmed == "FROZEN" },
            thaw: { try? state.write("THAWED") }
        )
    }

    /// Removes the memory cgroup; returns the rest to the pool when it can be reused
    /// cleanly (it is empty, nothing was killed in it, no fork was refused), else removes
    /// it too.
    func remove() {
        CgroupTree.remove(memoryDirectory)
        if let cpuset { CgroupTree.remove(cpuset.directory) }
        if !recycle() { shared.destroy() }
    }

    private func recycle() -> Bool {
        guard !shared.killed, processLimitHits() == 0, !shared.hasSubCgroups, CgroupFS.pids(shared.freezerDirectory + "/cgroup.procs").isEmpty,
              (try? shared.cpuReset.write("0")) != nil
        else { return false }
        return Self.pools.withLock { pools in
            guard (pools[shared.poolKey]?.count ?? 0) < Self.poolSize else { return false }
            pools[shared.poolKey, default: []].append(shared)
            return true
        }
    }

    /// Removes every pooled set (at exit).
    static func drainPools() {
        let all = pools.withLock { pools in
            defer { pools.removeAll() }
            return pools.values.flatMap { $0 }
        }
        for set in all { set.destroy() }
    }
}

extension CgroupV1Run {
    var directories: [String] { [memoryDirectory] + shared.directories.values.sorted() + (cpuset.map { [$0.directory] } ?? []) }
}
