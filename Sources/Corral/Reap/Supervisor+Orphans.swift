/// The orphan scan of the reaper: children re-parented to the subreaper, each given to the
/// run it belongs to.
extension Supervisor {
    /// Looks for children re-parented to us (we are the subreaper) and gives each to the
    /// run it belongs to. Orphans land on the first thread of the process that has not
    /// exited: the main thread, while it runs. The runs' main processes are children of the
    /// reaper thread and known already. A child no run claims yet is looked at again next
    /// time (and within this scan after others were adopted): adopting one process teaches
    /// a run the sessions its other processes may be in.
    ///
    /// Only the main thread's `/proc` entries are read while it runs: a lookup below another
    /// thread's own task directory leaves dentries that, once the process exits, made its
    /// parent's `wait4` spin for milliseconds on a busy host (what a judge that starts
    /// `corral run` per run waited for). If the main thread has exited (a program that ended
    /// it with `pthread_exit`, as `dispatchMain()` does), every thread's children are read.
    func scanChildren() {
        scannedThisPass = true
        let children: [Int32]
        if let files = mainThreadFiles ?? nil,
           let state = files.stat.read({ ProcFS.parseStat($0)?.state }) ?? nil,
           state != UInt8(ascii: "Z"), state != UInt8(ascii: "X"),
           let pids = files.children.read(ProcFS.parsePids) {
            children = pids
        } else {
            children = ProcFS.children(ofThreads: ProcFS.threadIDs(of: processID), in: processID)
        }
        var present: Set<Int32> = []
        var unclaimed: [(Int32, ProcessStat)] = []
        for child in children {
            present.insert(child)
            if foreignChildren.contains(child) { continue }
            if runs.values.contains(where: { $0.pid == child || $0.escapees.contains(child) }) { continue }
            if settingUp.values.contains(where: { $0.setup.pid == child }) { continue } // an isolated init, not set up yet
            guard let stat = ProcFS.stat(child) else { continue }
            // Every process of a run lives in a session the run created; one in ours is the
            // host's own child.
            if stat.session == ownSession {
                foreignChildren.insert(child)
                continue
            }
            unclaimed.append((child, stat))
        }
        var adopted = true
        while adopted && !unclaimed.isEmpty {
            adopted = false
            unclaimed.removeAll { child, stat in
                guard let owner = owner(of: child, stat) else { return false }
                owner.adopt(child, stat)
                adopted = true
                return true
            }
        }
        foreignChildren.formIntersection(present)
    }

    /// The run an unknown child belongs to: by group, session or pid seen before; else,
    /// with one run going, that run; else the latest run started before the child.
    func owner(of child: Int32, _ stat: ProcessStat) -> TrackedRun? {
        let active = runs.values.filter { $0.phase != .finished }
        // A cgroup says exactly which run a process belongs to.
        if let run = active.first(where: { $0.cgroup?.isMember(child) == true }) { return run }
        if let run = active.first(where: { $0.claims(child, stat) }) { return run }
        // Otherwise only a process-group run can own it, and that is a guess when there
        // are several.
        let uncontained = active.filter { $0.cgroup == nil }
        if uncontained.count == 1 { return uncontained.first }
        return uncontained.filter { $0.startBootTicks <= stat.startTime }.max { $0.startBootTicks < $1.startBootTicks }
    }
}
