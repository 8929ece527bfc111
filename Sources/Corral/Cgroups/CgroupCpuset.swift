import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A run's CPUs in its cgroup: `cpuset.cpus`, so that the program cannot widen the
/// affinity it was given (the kernel keeps every `sched_setaffinity` within the cpuset).
/// Made only for a run that asks for CPUs (``Job/cpus``), fresh for each, removed with it.
enum CgroupCpuset {
    /// v1 parents whose `cpuset.cpus` and `cpuset.mems` are filled in, in this process.
    private static let preparedV1Parents = Mutex<Set<String>>([])

    /// v1: a new cpuset directory `name` below the parent (created as the run directories of
    /// the other hierarchies are), with `cpuset.mems` and `cpuset.cpus` written, ready to
    /// join. A v1 cpuset starts with no CPUs and no memory nodes, and a process cannot join
    /// one that has none: every directory Corral makes on the way gets its parent's.
    static func makeV1(_ hierarchy: CgroupHost.Hierarchy, parent override: String?, name: String, cpus: CPUList) throws(CgroupError) -> String {
        let parent = CgroupV1Run.parentDirectory(hierarchy, override: override)
        let own = hierarchy.mount + (hierarchy.ownPath == "/" ? "" : hierarchy.ownPath)
        let directory = parent + "/" + name
        var attempts = 0
        while true {
            if !preparedV1Parents.withLock({ $0.contains(parent) }) {
                try CgroupFS.makeDirectories(parent, below: hierarchy.mount)
                CgroupParents.register(parent)
                try fillV1(parent, below: own)
                preparedV1Parents.withLock { _ = $0.insert(parent) }
            }
            if mkdir(directory, 0o755) == 0 { break }
            let error = errno
            attempts += 1
            // Another Corral process may have removed the idle parent at its exit.
            guard error == ENOENT, attempts < 5 else { throw CgroupFS.failure("mkdir", directory, error) }
            preparedV1Parents.withLock { _ = $0.remove(parent) }
        }
        do throws(CgroupError) {
            try check(cpus, within: parent + "/cpuset.effective_cpus", parent: parent)
            let mems = (CgroupFS.read(parent + "/cpuset.mems") ?? "").trimmed
            try CgroupFS.write(directory + "/cpuset.mems", mems)
            try CgroupFS.write(directory + "/cpuset.cpus", cpus.description)
            try verify(directory + "/cpuset.cpus", cpus)
            return directory
        } catch {
            CgroupFS.removeDirectory(directory)
            throw error
        }
    }

    /// Fills in the empty `cpuset.cpus` and `cpuset.mems` of every directory from below
    /// Corral's own cgroup down to `directory`, each from the one above it. Corral's own
    /// cpuset (it runs there) and any above it are never written.
    private static func fillV1(_ directory: String, below own: String) throws(CgroupError) {
        guard directory.hasPrefix(own + "/") else { return }
        var above = own
        for component in directory.dropFirst(own.count).split(separator: "/") {
            let node = above + "/" + component
            for file in ["cpuset.cpus", "cpuset.mems"] where (CgroupFS.read(node + "/" + file) ?? "").trimmed.isEmpty {
                try CgroupFS.write(node + "/" + file, (CgroupFS.read(above + "/" + file) ?? "").trimmed)
            }
            above = node
        }
    }

    /// v2: writes `cpuset.cpus` of a run's new directory (its parent enabled the cpuset
    /// controller for it); `cpuset.mems` left empty is the parent's.
    static func writeV2(_ directory: String, cpus: CPUList) throws(CgroupError) {
        let parent = String(directory[..<directory.lastIndex(of: "/")!])
        try check(cpus, within: parent + "/cpuset.cpus.effective", parent: parent)
        try CgroupFS.write(directory + "/cpuset.cpus", cpus.description)
        try verify(directory + "/cpuset.cpus", cpus)
    }

    /// Every CPU asked for is in the parent's cpuset: the kernel would refuse the write
    /// with a bare EINVAL, or (v2) quietly use the parent's CPUs instead.
    private static func check(_ cpus: CPUList, within file: String, parent: String) throws(CgroupError) {
        guard let text = CgroupFS.read(file)?.trimmed, let available = try? CPUList(text) else {
            throw CgroupError("cannot read the CPUs of \(parent)'s cpuset (\(file))")
        }
        if let outside = cpus.cpus.first(where: { !available.cpus.contains($0) }) {
            throw CgroupError("CPU \(outside) is not in the cpuset of \(parent) (its CPUs: \(available))")
        }
    }

    /// What the kernel kept is what was asked for.
    private static func verify(_ file: String, _ cpus: CPUList) throws(CgroupError) {
        let text = (CgroupFS.read(file) ?? "").trimmed
        guard (try? CPUList(text)) == cpus else {
            throw CgroupError("\(file) holds \"\(text)\" after writing \"\(cpus)\"")
        }
    }
}
