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

    private init(name: String, directory: String, membershipSuffix: String, joinDescriptors: [Int32]) {
        self.name = name
        self.directory = directory
        self.membershipSuffix = membershipSuffix
        self.joinDescriptors = joinDescriptors
    }

    deinit { closeJoinDescriptors() }

    /// Parents whose controllers are already enabled in this process.
    private static let preparedParents = Mutex<Set<String>>([])

    static func parentRelative(_ unified: CgroupHost.Unified, override: String?) -> String {
        let relative = override ?? ((unified.ownPath == "/" ? "" : unified.ownPath) + "/corral")
        return relative.hasPrefix("/") ? relative : "/" + relative
    }

    static func create(host: CgroupHost, parent override: String?, name: String, limits: Limits) throws(CgroupError) -> CgroupV2Run {
        guard let unified = host.unified else { throw CgroupError("no cgroup v2 hierarchy is mounted") }
        if limits.memory != nil && !unified.controllers.contains("memory") {
            throw CgroupError("the cgroup v2 hierarchy at \(unified.mount) has no memory controller here")
        }
        if limits.processes != nil && !unified.controllers.contains("pids") {
            throw CgroupError("the cgroup v2 hierarchy at \(unified.mount) has no pids controller here")
        }
        let relativeParent = parentRelative(unified, override: override)
        let parent = unified.mount + relativeParent
        let directory = parent + "/" + name
        var attempts = 0
        while true {
            try prepare(parent: parent, unified: unified, overridden: override != nil)
            if mkdir(directory, 0o755) == 0 { break }
            let error = errno
            attempts += 1
            // Another Corral process may have removed the idle parent at its exit.
            guard error == ENOENT, attempts < 5 else { throw CgroupFS.failure("mkdir", directory, error) }
            preparedParents.withLock { _ = $0.remove(parent) }
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
            let procs = try CgroupFS.openForWriting(directory + "/cgroup.procs")
            return CgroupV2Run(name: name, directory: directory, membershipSuffix: "0::" + relativeParent + "/" + name,
                               joinDescriptors: [procs])
        } catch {
            CgroupFS.removeDirectory(directory)
            throw error
        }
    }

    /// Creates the parent and enables the memory and pids controllers for its children. The
    /// no-internal-processes rule forbids enabling controllers in a cgroup that has
    /// processes: if this process's own cgroup has only this process, Corral moves itself
    /// into a leaf of its own (`corral-supervisor`) first, as a delegated service must.
    private static func prepare(parent: String, unified: CgroupHost.Unified, overridden: Bool) throws(CgroupError) {
        if preparedParents.withLock({ $0.contains(parent) }) { return }
        let wanted = ["memory", "pids"].filter { unified.controllers.contains($0) }
        let own = unified.mount + (unified.ownPath == "/" ? "" : unified.ownPath)
        if !wanted.isEmpty && !overridden && unified.ownPath != "/" {
            let enable = wanted.map { "+" + $0 }.joined(separator: " ")
            do throws(CgroupError) {
                try CgroupFS.write(own + "/cgroup.subtree_control", enable)
            } catch {
                let members = CgroupFS.pids(own + "/cgroup.procs")
                guard members == [getpid()] else {
                    throw CgroupError("cannot enable \(wanted.joined(separator: ", ")) below \(own): other processes share its cgroup (\(error.message)); give --cgroup-parent a delegated cgroup")
                }
                let leaf = own + "/corral-supervisor"
                try CgroupFS.makeDirectory(leaf, existingIsFine: true)
                try CgroupFS.write(leaf + "/cgroup.procs", String(getpid()))
                try CgroupFS.write(own + "/cgroup.subtree_control", enable)
            }
        }
        try CgroupFS.makeDirectories(parent, below: unified.mount)
        if !wanted.isEmpty {
            try CgroupFS.write(parent + "/cgroup.subtree_control", wanted.map { "+" + $0 }.joined(separator: " "))
        }
        preparedParents.withLock { _ = $0.insert(parent) }
        CgroupParents.register(parent)
    }

    func closeJoinDescriptors() {
        joinDescriptors.forEach { _ = close($0) }
        joinDescriptors = []
    }

    func isMember(_ pid: Int32) -> Bool { procCgroupContains(pid, membershipSuffix) }

    func members() -> [Int32] { CgroupFS.pids(directory + "/cgroup.procs") }

    func cpu() -> CgroupCPU? {
        let stat = CgroupFS.readKeyed(directory + "/cpu.stat")
        guard let total = stat["usage_usec"] else { return nil }
        return CgroupCPU(total: Int64(total), user: Int64(stat["user_usec"] ?? total), system: Int64(stat["system_usec"] ?? 0))
    }

    func memoryPeak() -> UInt64? { CgroupFS.readNumber(directory + "/memory.peak") }

    func memoryCurrent() -> UInt64? { CgroupFS.readNumber(directory + "/memory.current") }

    func oomKills() -> UInt64 {
        CgroupFS.readKeyed(directory + "/memory.events")["oom_kill"] ?? 0
    }

    func processLimitHits() -> UInt64 {
        CgroupFS.readKeyed(directory + "/pids.events")["max"] ?? 0
    }

    func killAll() -> [Int32] {
        let members = members()
        if members.isEmpty { return [] }
        if (try? CgroupFS.write(directory + "/cgroup.kill", "1")) != nil { return members }
        return freezeAndKill(
            procs: directory + "/cgroup.procs",
            freeze: { (try? CgroupFS.write(directory + "/cgroup.freeze", "1")) != nil },
            isFrozen: { CgroupFS.readKeyed(directory + "/cgroup.events")["frozen"] == 1 },
            thaw: { try? CgroupFS.write(directory + "/cgroup.freeze", "0") }
        )
    }

    func remove() {
        CgroupFS.removeDirectory(directory)
    }
}

extension CgroupV2Run {
    var directories: [String] { [directory] }
}
