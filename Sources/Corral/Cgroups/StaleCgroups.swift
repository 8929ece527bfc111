import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What a cleanup did.
public struct CleanupSummary: Sendable, Hashable, Codable {
    /// Run cgroups of dead owners removed.
    public var cgroupsRemoved = 0
    /// Processes killed in them.
    public var processesKilled = 0
    /// Empty staging directories of isolated runs removed.
    public var stagingRemoved = 0
    /// Job working directories (`corral-job-PID-START-*` in `$TMPDIR` or `/tmp`) removed.
    public var jobDirectoriesRemoved = 0
    /// Persisted mount templates removed (`corral cleanup`: see ``TemplateStore``).
    public var templatesRemoved = 0
    /// Directories that could not be removed, with why.
    public var failures: [String] = []

    public init() {}
}

/// Removes run cgroups left behind by a Corral that died (SIGKILL, a crash): the owner
/// named in the directory is gone, or its pid now belongs to another process. Whatever
/// still runs in them is killed first. Directories of live owners are never touched.
/// ``clean(configuration:)`` also removes such a Corral's isolation staging directories and
/// job working directories.
public enum StaleCgroups {
    private static let cleanedParents = Mutex<Set<String>>([])

    /// Cleans every parent Corral would use with this configuration.
    public static func clean(configuration: RunnerConfiguration = RunnerConfiguration()) -> CleanupSummary {
        var summary = CleanupSummary()
        let host = CgroupHost.current
        if host.hasV1 { cleanV1(host: host, parent: configuration.cgroupParent, into: &summary, removeParents: true) }
        if host.unified != nil {
            cleanV2(host: host, parent: configuration.cgroupParent, into: &summary, removeParents: true)
            restoreOwnCgroups(host: host, into: &summary)
        }
        removeStaleRoots(into: &summary)
        // After the cgroups: whatever could still write in them is dead by now.
        summary.jobDirectoriesRemoved = Workdir.removeStale()
        return summary
    }

    /// Once per parent and process, before the first run that uses it.
    static func cleanOnce(_ containment: Containment, host: CgroupHost, parent: String?) {
        let key = "\(containment.rawValue):\(parent ?? "")"
        let first = cleanedParents.withLock { $0.insert(key).inserted }
        guard first else { return }
        var summary = CleanupSummary()
        if containment == .cgroupV1 { cleanV1(host: host, parent: parent, into: &summary, removeParents: false) }
        if containment == .cgroupV2 { cleanV2(host: host, parent: parent, into: &summary, removeParents: false) }
    }

    private static func cleanV1(host: CgroupHost, parent: String?, into summary: inout CleanupSummary, removeParents: Bool) {
        // The cpuset hierarchy too: runs that asked for CPUs have a directory there.
        let parents = (CgroupHost.v1Controllers + ["cpuset"]).compactMap { controller in
            host.v1[controller].map { (controller, CgroupV1Run.parentDirectory($0, override: parent)) }
        }
        var names: Set<String> = []
        for (_, directory) in parents { names.formUnion(CgroupFS.entries(of: directory)) }
        for name in names.sorted() {
            guard let owner = CgroupOwner.parse(name), !owner.isAlive else { continue }
            if let freezer = parents.first(where: { $0.0 == "freezer" })?.1 {
                let directory = freezer + "/" + name
                summary.processesKilled += killUntilEmpty(directory) {
                    let state = directory + "/freezer.state"
                    freezeAndKill(
                        members: { CgroupTree.pids(directory) },
                        freeze: { (try? CgroupFS.write(state, "FROZEN")) != nil },
                        isFrozen: { CgroupFS.read(state)?.trimmed == "FROZEN" },
                        thaw: { try? CgroupFS.write(state, "THAWED") }
                    )
                }
            }
            for (_, directory) in parents {
                // Other hierarchies may still hold processes that were never in the freezer one.
                summary.processesKilled += killUntilEmpty(directory + "/" + name) {
                    for pid in CgroupTree.pids(directory + "/" + name) { _ = kill(pid, SIGKILL) }
                }
            }
            var removed = true
            for (_, directory) in parents where CgroupFS.exists(directory + "/" + name) {
                let error = CgroupTree.remove(directory + "/" + name)
                if error != 0 {
                    removed = false
                    summary.failures.append("rmdir \(directory)/\(name): \(SetupFailure.describe(error))")
                }
            }
            if removed { summary.cgroupsRemoved += 1 }
        }
        if removeParents {
            for (_, directory) in parents where CgroupFS.entries(of: directory).isEmpty {
                CgroupFS.removeDirectory(directory)
            }
        }
    }

    private static func cleanV2(host: CgroupHost, parent: String?, into summary: inout CleanupSummary, removeParents: Bool) {
        guard let unified = host.unified else { return }
        let directory = unified.mount + CgroupV2Run.parentRelative(unified, override: parent)
        for name in CgroupFS.entries(of: directory).sorted() {
            guard let owner = CgroupOwner.parse(name), !owner.isAlive else { continue }
            let run = directory + "/" + name
            summary.processesKilled += killUntilEmpty(run) {
                if (try? CgroupFS.write(run + "/cgroup.kill", "1")) == nil {
                    for pid in CgroupTree.pids(run) { _ = kill(pid, SIGKILL) }
                }
            }
            let error = CgroupTree.remove(run)
            if error == 0 { summary.cgroupsRemoved += 1 } else {
                summary.failures.append("rmdir \(run): \(SetupFailure.describe(error))")
            }
        }
        if removeParents && CgroupFS.entries(of: directory).isEmpty {
            CgroupFS.removeDirectory(directory)
        }
    }

    /// A Corral that died after moving itself into a `corral-supervisor-PID-START-CONTROLLERS`
    /// leaf left its cgroup with controllers enabled and children, so nothing can be moved
    /// into it (EBUSY). Wherever in the v2 hierarchy such a leaf of a dead owner is, this
    /// removes the run cgroups beside it, disables what the Corral enabled, and removes the
    /// leaf (one with processes in it stays, and is reported).
    private static func restoreOwnCgroups(host: CgroupHost, into summary: inout CleanupSummary) {
        guard let unified = host.unified else { return }
        let prefix = CgroupV2Delegation.leafPrefix
        for leaf in CgroupTree.descendants(of: unified.mount) {
            guard let slash = leaf.lastIndex(of: "/") else { continue }
            let name = String(leaf[leaf.index(after: slash)...])
            guard let owner = CgroupOwner.parse(temporary: name, prefix: prefix), !owner.isAlive else { continue }
            let own = String(leaf[..<slash])
            let enabled = name.split(separator: "-").last.map { $0.split(separator: ",").map(String.init) } ?? []
            let relative = String(own.dropFirst(unified.mount.count))
            cleanV2(host: host, parent: relative + "/corral", into: &summary, removeParents: true)
            if !CgroupTree.pids(leaf).isEmpty {
                summary.failures.append("\(leaf): processes are still in it; not removed")
                continue
            }
            if let failure = CgroupV2Delegation.undo(own: own, leaf: leaf, enabled: enabled, moving: nil) {
                summary.failures.append(failure)
            } else {
                summary.cgroupsRemoved += 1
            }
        }
    }

    private static let rootsCleaned = Atomic<Bool>(false)

    /// Before a process's first isolated run: the staging directories dead Corrals left.
    static func removeStaleRootsOnce() {
        guard rootsCleaned.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        var summary = CleanupSummary()
        removeStaleRoots(into: &summary)
    }

    /// Empty staging directories of isolated runs (`/tmp/corral-root-PID-START-*`) whose
    /// owner is gone, never through a link nor anyone else's (see ``StaleDirectories``).
    private static func removeStaleRoots(into summary: inout CleanupSummary) {
        summary.stagingRemoved += StaleDirectories.removeStagingRoots()
    }

    /// Runs `kill` until the cgroup `directory` and every cgroup below it are empty (at
    /// most about two seconds); returns how many processes were there at first.
    private static func killUntilEmpty(_ directory: String, _ kill: () -> Void) -> Int {
        let initial = CgroupTree.pids(directory).count
        var rounds = 0
        while !CgroupTree.pids(directory).isEmpty && rounds < 400 {
            kill()
            usleep(5_000)
            rounds += 1
        }
        return initial
    }
}
