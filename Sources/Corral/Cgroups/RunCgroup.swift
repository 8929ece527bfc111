#if canImport(Glibc)
import Glibc
#endif

/// CPU time a cgroup has used, in microseconds.
struct CgroupCPU: Sendable, Hashable {
    var total: Int64
    var user: Int64
    var system: Int64
}

/// The cgroup (v2) or cgroups (v1, one per controller) of one run: what belongs to the
/// run, what it used, and how to end it. Created by the caller, then used by the reaper
/// thread only.
protocol RunCgroup: AnyObject, Sendable {
    var containment: Containment { get }
    /// The directory name, the same in every hierarchy: `run-OWNERPID-OWNERSTART-SEQ`.
    var name: String { get }
    /// Open `cgroup.procs` files the child writes "0" into before exec.
    var joinDescriptors: [Int32] { get }
    /// A v2 run's directory (O_RDONLY | O_DIRECTORY), for the spawn to create the main
    /// process inside it (`clone3` with `CLONE_INTO_CGROUP`, no migration); -1 on v1.
    var cloneDirectory: Int32 { get }
    /// Every directory of the run's cgroup(s): what ``RunGuard`` empties should Corral die.
    var directories: [String] { get }
    func closeJoinDescriptors()
    /// Whether `pid` (alive or a zombie) is in the run's cgroup.
    func isMember(_ pid: Int32) -> Bool
    /// The processes in the cgroup now.
    func members() -> [Int32]
    func cpu() -> CgroupCPU?
    /// The CPU total alone, in microseconds (one read): what the CPU limit is checked against.
    func cpuTotal() -> Int64?
    /// The peak memory use, where the kernel keeps one.
    func memoryPeak() -> UInt64?
    func memoryCurrent() -> UInt64?
    /// A descriptor to poll for the memory cgroup's events (see ``CgroupMemoryEvents``),
    /// or nil where none can be had. Asked for once a run, when it has a memory limit.
    func memoryEvents() -> CgroupMemoryEvents?
    /// OOM kills inside the run's cgroup.
    func oomKills() -> UInt64
    /// Forks refused at the pids limit.
    func processLimitHits() -> UInt64
    /// One round of killing everything in the cgroup; returns the pids it found there, none
    /// when the cgroup was empty. (On
    /// v1 an exiting process shows the root cgroup in /proc/PID/cgroup, so these pids are
    /// how its zombie is later known to be the run's.)
    @discardableResult
    func killAll() -> [Int32]
    /// Removes the (empty) cgroup directories.
    func remove()
}

/// Who owns a run cgroup: the pid and start time of the Corral process that made it, so a
/// later Corral can tell a live owner from a dead one whose pid was reused.
struct CgroupOwner: Sendable, Hashable {
    var pid: Int32
    var startTime: UInt64

    static let current = CgroupOwner(pid: getpid(), startTime: ProcFS.stat(getpid())?.startTime ?? 0)

    /// The same process (pid and start time) is there and has not exited: a zombie whose
    /// parent has not reaped it yet is dead for this.
    var isAlive: Bool {
        guard let stat = ProcFS.stat(pid) else { return false }
        return stat.startTime == startTime && stat.state != UInt8(ascii: "Z") && stat.state != UInt8(ascii: "X")
    }

    func runName(_ sequence: UInt64) -> String {
        "run-\(pid)-\(startTime)-\(sequence)"
    }

    /// The owner named in a temporary directory's name, `PREFIX-PID-START-RANDOM` (a job's
    /// working directory, an isolation root), or nil when the name is not such a one.
    static func parse(temporary name: String, prefix: String) -> CgroupOwner? {
        guard name.hasPrefix(prefix + "-") else { return nil }
        let parts = name.dropFirst(prefix.count + 1).split(separator: "-", maxSplits: 2)
        guard parts.count == 3, let pid = Int32(parts[0]), let start = UInt64(parts[1]) else { return nil }
        return CgroupOwner(pid: pid, startTime: start)
    }

    /// The owner named in a run directory's name, or nil when it is not one of Corral's.
    static func parse(_ name: String) -> CgroupOwner? {
        let parts = name.split(separator: "-")
        guard parts.count == 4, parts[0] == "run", let pid = Int32(parts[1]), let start = UInt64(parts[2]),
              UInt64(parts[3]) != nil else { return nil }
        return CgroupOwner(pid: pid, startTime: start)
    }
}

/// Reads /proc/PID/cgroup and looks for a line ending in `suffix` (e.g.
/// ":pids:/corral/run-1-2-3"), or naming a cgroup below it (a program's sub-cgroup).
func procCgroupContains(_ pid: Int32, _ suffix: String) -> Bool {
    guard let bytes = ProcFS.read("/proc/\(pid)/cgroup") else { return false }
    let text = String(decoding: bytes, as: UTF8.self)
    return text.split(separator: "\n").contains { $0.hasSuffix(suffix) || $0.contains(suffix + "/") }
}

/// Freezes a cgroup (with every cgroup below it: freezing is hierarchical in v1 and v2),
/// SIGKILLs every process of `members` while none can fork or exit, and thaws it: frozen
/// processes keep their pids, so no signal can reach a reused pid.
@discardableResult
func freezeAndKill(members: () -> [Int32], freeze: () -> Bool, isFrozen: () -> Bool, thaw: () -> Void) -> [Int32] {
    if members().isEmpty { return [] }
    if freeze() {
        var waited = 0
        while !isFrozen() && waited < 200 {
            usleep(500)
            waited += 1
        }
    }
    let frozen = members()
    for pid in frozen {
        _ = kill(pid, SIGKILL)
    }
    thaw()
    return frozen
}
