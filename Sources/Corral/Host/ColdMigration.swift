/// Whether a run's first cgroup migration after an idle moment waits for an RCU grace
/// period here. Moving a process into a cgroup (a write to `cgroup.procs`) takes the
/// kernel's cgroup thread-group lock for writing, and taking it after it has not been
/// taken for a while waits for a grace period: about 15 ms on the development host, paid by
/// every run of a judge that does other work between runs. It is not paid when the kernel
/// expedites grace periods (`/sys/kernel/rcu_expedited` = 1, and `rcu_normal` not 1), when
/// a cgroup hierarchy is mounted with `favordynmods` (the lock then stays in its slow-reader,
/// fast-writer mode), or when the run is created inside its cgroup (v2: `clone3` with
/// `CLONE_INTO_CGROUP`, which Corral does for plain runs). Corral changes no host setting;
/// `corral doctor` says what to set.
public struct ColdMigration: Sendable, Hashable, Codable {
    /// Runs of the selected containment join their cgroup by a migration: v1 always; on v2
    /// only isolated runs (their init joins by `cgroup.procs`); process-group runs never.
    public var runsMigrate: Bool
    /// `/sys/kernel/rcu_expedited` (nil when unreadable).
    public var rcuExpedited: Bool?
    /// `/sys/kernel/rcu_normal`: 1 overrides `rcu_expedited`.
    public var rcuNormal: Bool?
    /// A cgroup hierarchy (v1 or v2) is mounted with `favordynmods`.
    public var favordynmods: Bool
    /// Runs here pay the grace period after an idle moment.
    public var paysGracePeriod: Bool
    /// What to set so they do not, when they do.
    public var advice: String?

    static func inspect(selected: Containment) -> ColdMigration {
        let expedited = CgroupFS.readNumber("/sys/kernel/rcu_expedited").map { $0 != 0 }
        let normal = CgroupFS.readNumber("/sys/kernel/rcu_normal").map { $0 != 0 }
        let favordynmods = favordynmodsMounted(CgroupFS.read("/proc/self/mountinfo") ?? "")
        let runsMigrate = selected != .processGroup
        let fast = favordynmods || (expedited == true && normal != true)
        let pays = runsMigrate && !fast
        var advice: String?
        if pays {
            advice = (normal == true ? "set /sys/kernel/rcu_normal to 0 and " : "set ")
                + "/sys/kernel/rcu_expedited to 1 (`echo 1 > /sys/kernel/rcu_expedited`, or the boot parameter "
                + "rcupdate.rcu_expedited=1), or mount the cgroup2 hierarchy with favordynmods "
                + "(`mount -o remount,favordynmods MOUNT`, kernel 6.0+)"
        }
        return ColdMigration(runsMigrate: runsMigrate, rcuExpedited: expedited, rcuNormal: normal,
                             favordynmods: favordynmods, paysGracePeriod: pays, advice: advice)
    }

    /// Whether any `cgroup` or `cgroup2` mount of `mountinfo` has `favordynmods` among its
    /// super options (the last field).
    public static func favordynmodsMounted(_ mountinfo: String) -> Bool {
        mountinfo.split(separator: "\n").contains { line in
            let halves = line.split(separator: " - ", omittingEmptySubsequences: false)
            guard halves.count == 2 else { return false }
            let right = halves[1].split(separator: " ")
            guard right.count >= 3, right[0] == "cgroup" || right[0] == "cgroup2" else { return false }
            return right[2].split(separator: ",").contains("favordynmods")
        }
    }
}
