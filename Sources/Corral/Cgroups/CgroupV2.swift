import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A run's cgroup on v2: one directory in the unified hierarchy.
final class CgroupV2Run: RunCgroup, @unchecked Sendable {
    let name: String
    let containment = Containment.cgroupV2
    private let directory: String
    private let membershipSuffix: String
    private(set) var joinDescriptors: [Int32]
    private(set) var cloneDirectory: Int32

    private init(name: String, directory: String, membershipSuffix: String, joinDescriptors: [Int32], cloneDirectory: Int32) {
        self.name = name
        self.directory = directory
        self.membershipSuffix = membershipSuffix
        self.joinDescriptors = joinDescriptors
        self.cloneDirectory = cloneDirectory
    }

    deinit { closeJoinDescriptors() }

    /// Parents whose controllers are already enabled in this process.
    private static let preparedParents = Mutex<Set<String>>([])

    static func parentRelative(_ unified: CgroupHost.Unified, override: String?) -> String {
        let relative = override ?? ((unified.ownPath == "/" ? "" : unified.ownPath) + "/corral")
        return relative.hasPrefix("/") ? relative : "/" + relative
    }

    static func create(host: CgroupHost, parent override: String?, name: String, limits: Limits,
                       cpus: CPUList? = nil) throws(CgroupError) -> CgroupV2Run {
        guard let unified = host.unified else { throw CgroupError("no cgroup v2 hierarchy is mounted") }
        let offered = offeredControllers(unified, overridden: override != nil)
        if limits.memory != nil && !offered.contains("memory") {
            throw CgroupError("the cgroup v2 hierarchy at \(unified.mount) has no memory controller here")
        }
        if limits.processes != nil && !offered.contains("pids") {
            throw CgroupError("the cgroup v2 hierarchy at \(unified.mount) has no pids controller here")
        }
        if cpus != nil && !offered.contains("cpuset") {
            throw CgroupError("the cgroup v2 hierarchy at \(unified.mount) has no cpuset controller here, so the program could widen its CPUs; cpus needs one with cgroup containment")
        }
        let relativeParent = parentRelative(unified, override: override)
        let parent = unified.mount + relativeParent
        let directory = parent + "/" + name
        var attempts = 0
        while true {
            try prepare(parent: parent, unified: unified, overridden: override != nil, cpuset: cpus != nil)
            if mkdir(directory, 0o755) == 0 { break }
            let error = errno
            attempts += 1
            // Another Corral process may have removed the idle parent at its exit.
            guard error == ENOENT, attempts < 5 else { throw CgroupFS.failure("mkdir", directory, error) }
            preparedParents.withLock {
                $0.remove(parent)
                $0.remove(parent + "\ncpuset")
            }
        }
        do throws(CgroupError) {
            if let bytes = limits.memory {
                try CgroupFS.write(directory + "/memory.max", String(bytes))
                if CgroupFS.exists(directory + "/memory.swap.max") {
                    try CgroupFS.write(directory + "/memory.swap.max", "0")
                }
                try CgroupFS.write(directory + "/memory.oom.group", "1")
            }
            if let processes = limits.processes {
                try CgroupFS.write(directory + "/pids.max", String(processes))
            }
            if let cpus {
                try CgroupCpuset.writeV2(directory, cpus: cpus)
            }
            // A fresh directory for every run: after `cgroup.kill` the kernel kills every
            // later clone into the same directory at once.
            let procs = try CgroupFS.openForWriting(directory + "/cgroup.procs")
            let cloneDirectory = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard cloneDirectory >= 0 else {
                let error = errno
                close(procs)
                throw CgroupFS.failure("open", directory, error)
            }
            return CgroupV2Run(name: name, directory: directory, membershipSuffix: "0::" + relativeParent + "/" + name,
                               joinDescriptors: [procs], cloneDirectory: cloneDirectory)
        } catch {
            CgroupFS.removeDirectory(directory)
            throw error
        }
    }

    /// The controllers run cgroups can have: those of Corral's own cgroup by default, all
    /// the hierarchy has below a `--cgroup-parent` (getting them there is checked on the way).
    private static func offeredControllers(_ unified: CgroupHost.Unified, overridden: Bool) -> Set<String> {
        guard overridden else { return unified.controllers }
        return Set((CgroupFS.read(unified.mount + "/cgroup.controllers") ?? "")
            .split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
    }

    /// Creates the parent and enables the memory and pids controllers for its children
    /// (``CgroupV2Delegation``). By default they are the ones Corral's own cgroup offers;
    /// below a `--cgroup-parent`, all the hierarchy has, and a parent that cannot have them
    /// is an error that says what is missing where. The cpuset controller only once a run
    /// asks for CPUs.
    private static func prepare(parent: String, unified: CgroupHost.Unified, overridden: Bool, cpuset: Bool) throws(CgroupError) {
        let key = cpuset ? parent + "\ncpuset" : parent
        if preparedParents.withLock({ $0.contains(key) }) { return }
        let wanted = ["memory", "pids"].filter { offeredControllers(unified, overridden: overridden).contains($0) } + (cpuset ? ["cpuset"] : [])
        let own = unified.mount + (unified.ownPath == "/" ? "" : unified.ownPath)
        let created = try CgroupV2Delegation.prepare(parent: parent, mount: unified.mount, own: own, wanted: wanted)
        preparedParents.withLock { _ = $0.insert(key) }
        for directory in created { CgroupParents.register(directory) }
        CgroupParents.register(parent)
    }

    func closeJoinDescriptors() {
        joinDescriptors.forEach { _ = close($0) }
        joinDescriptors = []
        if cloneDirectory >= 0 { close(cloneDirectory) }
        cloneDirectory = -1
    }

    func isMember(_ pid: Int32) -> Bool { procCgroupContains(pid, membershipSuffix) }

    /// The run's processes, in its cgroup and any cgroup its program made below it.
    func members() -> [Int32] { CgroupTree.pids(directory) }

    func cpu() -> CgroupCPU? {
        let stat = CgroupFS.readKeyed(directory + "/cpu.stat")
        guard let total = stat["usage_usec"] else { return nil }
        return CgroupCPU(total: Int64(total), user: Int64(stat["user_usec"] ?? total), system: Int64(stat["system_usec"] ?? 0))
    }

    func cpuTotal() -> Int64? { cpu()?.total }

    func memoryPeak() -> UInt64? { CgroupFS.readNumber(directory + "/memory.peak") }

    func memoryCurrent() -> UInt64? { CgroupFS.readNumber(directory + "/memory.current") }

    /// With `memory.oom.group` set, the kernel counts the process it chose twice in
    /// `oom_kill` (once as the victim, once more as a member of the group it then kills),
    /// and `oom_group_kill` (5.18+) counts those group kills: the difference is the number
    /// of processes killed. (Should the victim be gone before the group is killed, it is
    /// counted once; a kill is never reported as none.)
    func memoryEvents() -> CgroupMemoryEvents? { CgroupMemoryEvents.v2(directory) }

    func oomKills() -> UInt64 {
        Self.processesKilled(CgroupFS.readKeyed(directory + "/memory.events"))
    }

    static func processesKilled(_ events: [String: UInt64]) -> UInt64 {
        let kills = events["oom_kill"] ?? 0
        let groupKills = events["oom_group_kill"] ?? 0
        guard kills > 0 else { return 0 }
        return kills > groupKills ? kills - groupKills : 1
    }

    func processLimitHits() -> UInt64 {
        CgroupFS.readKeyed(directory + "/pids.events")["max"] ?? 0
    }

    /// `cgroup.kill` and `cgroup.freeze` act on every cgroup below the run's too.
    func killAll() -> [Int32] {
        let members = members()
        if members.isEmpty { return [] }
        if (try? CgroupFS.write(directory + "/cgroup.kill", "1")) != nil { return members }
        let directory = directory
        return freezeAndKill(
            members: { CgroupTree.pids(directory) },
            freeze: { (try? CgroupFS.write(directory + "/cgroup.freeze", "1")) != nil },
            isFrozen: { CgroupFS.readKeyed(directory + "/cgroup.events")["frozen"] == 1 },
            thaw: { try? CgroupFS.write(directory + "/cgroup.freeze", "0") }
        )
    }

    /// Removes the run's cgroup with any its program made below it, deepest first.
    func remove() {
        CgroupTree.remove(directory)
    }
}

extension CgroupV2Run {
    var directories: [String] { [directory] }
}
