#if canImport(Glibc)
import Glibc
#endif

/// A run's cgroup with whatever sub-cgroups its program made in it. A program running as
/// root can `mkdir` a child cgroup inside its run's and move itself there; `cgroup.procs`
/// lists only a cgroup's own members (v1 and v2 alike), and a directory with children
/// cannot be removed. So killing, listing and removing a run go over the whole tree.
///
/// Only directories are followed (cgroupfs has no symlinks, and none can be made in it);
/// the walk stops after ``limit`` directories, and whatever lies beyond is then reported
/// as not removed rather than looked for without end.
enum CgroupTree {
    static let limit = 10_000

    /// The directories below `directory`, deepest first (each after all its children).
    static func descendants(of directory: String) -> [String] {
        var result: [String] = []
        var budget = limit
        collect(directory, into: &result, budget: &budget)
        return result
    }

    private static func collect(_ directory: String, into result: inout [String], budget: inout Int) {
        guard mayHaveChildren(directory) else { return }
        for name in CgroupFS.entries(of: directory) where budget > 0 {
            budget -= 1
            let child = directory + "/" + name
            collect(child, into: &result, budget: &budget)
            result.append(child)
        }
    }

    /// Whether `directory` has any child cgroup.
    static func hasChildren(_ directory: String) -> Bool {
        mayHaveChildren(directory) && !CgroupFS.entries(of: directory).isEmpty
    }

    /// False only when `directory` is a directory with no subdirectory: cgroupfs (kernfs,
    /// v1 and v2) counts a directory's links as 2 plus its subdirectories, so one `stat`
    /// answers what listing the few dozen control files of a leaf would. Anything else
    /// (an error, another count) is listed.
    static func mayHaveChildren(_ directory: String) -> Bool {
        var info = stat()
        guard stat(directory, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { return true }
        return info.st_nlink != 2
    }

    /// The processes in `directory` and in every cgroup below it.
    static func pids(_ directory: String) -> [Int32] {
        var result = CgroupFS.pids(directory + "/cgroup.procs")
        for child in descendants(of: directory) {
            result.append(contentsOf: CgroupFS.pids(child + "/cgroup.procs"))
        }
        return result
    }

    /// Removes the cgroups below `directory` bottom-up, then `directory`; returns the errno
    /// of the first removal that failed (0 when all went).
    @discardableResult
    static func remove(_ directory: String) -> Int32 {
        var failure: Int32 = 0
        for child in descendants(of: directory) {
            let error = CgroupFS.removeDirectory(child)
            if failure == 0 && error != 0 && error != ENOENT { failure = error }
        }
        let error = CgroupFS.removeDirectory(directory)
        return failure != 0 ? failure : (error == ENOENT ? 0 : error)
    }
}
