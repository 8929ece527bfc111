import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Makes the parent of v2 run cgroups and gets the controllers a run needs enabled on the
/// way down to it, changing only what Corral may change: directories it creates, and its
/// own cgroup (moving itself into a leaf first, which it undoes at exit). Anything above
/// that lacks a controller is named, with the file to write, and nothing made is left.
enum CgroupV2Delegation {
    /// Corral's own cgroup, changed to let its children have controllers: the leaf it moved
    /// itself into, and the controllers it enabled there.
    struct OwnChange: Sendable {
        var own: String
        var leaf: String?
        var enabled: [String]
    }

    private static let ownChange = Mutex<OwnChange?>(nil)
    static let leafPrefix = "corral-supervisor"

    /// The leaf's name says who made it and what it enabled, for `corral cleanup` after a
    /// Corral that died: `corral-supervisor-PID-START-memory,pids`.
    static func leafName(enabled: [String]) -> String {
        "\(leafPrefix)-\(CgroupOwner.current.pid)-\(CgroupOwner.current.startTime)-" + enabled.joined(separator: ",")
    }

    static func subtreeControl(_ directory: String) -> Set<String> {
        Set((CgroupFS.read(directory + "/cgroup.subtree_control") ?? "")
            .split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
    }

    /// Creates `parent` (absolute) with the directories above it that are missing, and
    /// enables `wanted` in its `subtree_control`. Returns the directories it created, top
    /// first. On failure removes them again and throws what is missing where.
    static func prepare(parent: String, mount: String, own: String, wanted: [String]) throws(CgroupError) -> [String] {
        var created: [String] = []
        do throws(CgroupError) {
            var up = mount
            let components = parent.dropFirst(mount.count).split(separator: "/")
            for component in components {
                // String(component): `String + Substring` is generic code that looks the
                // element type's conformances up at run time (a scan of all of them).
                let node = up + "/" + String(component)
                let missing = wanted.filter { !subtreeControl(up).contains($0) }
                if !missing.isEmpty {
                    if created.contains(up) {
                        try CgroupFS.write(up + "/cgroup.subtree_control", missing.map { "+" + $0 }.joined(separator: " "))
                    } else if up == own && up != mount {
                        try enableInOwnCgroup(own, missing)
                    } else {
                        throw notEnabled(missing, in: up, below: parent)
                    }
                }
                if mkdir(node, 0o755) == 0 {
                    created.append(node)
                } else if errno != EEXIST {
                    throw CgroupFS.failure("mkdir", node, errno)
                }
                up = node
            }
            let missing = wanted.filter { !subtreeControl(parent).contains($0) }
            if !missing.isEmpty {
                do throws(CgroupError) {
                    try CgroupFS.write(parent + "/cgroup.subtree_control", missing.map { "+" + $0 }.joined(separator: " "))
                } catch {
                    let members = CgroupFS.pids(parent + "/cgroup.procs")
                    if !members.isEmpty {
                        throw CgroupError("cannot enable \(missing.joined(separator: ", ")) in \(parent)/cgroup.subtree_control: processes are in \(parent) itself (\(members.count)), and a cgroup with processes cannot give controllers to its children; give a cgroup without processes of its own")
                    }
                    throw error
                }
            }
            return created
        } catch {
            for directory in created.reversed() { CgroupFS.removeDirectory(directory) }
            throw error
        }
    }

    private static func notEnabled(_ missing: [String], in directory: String, below parent: String) -> CgroupError {
        let names = missing.joined(separator: " and ")
        let line = missing.map { "+" + $0 }.joined(separator: " ")
        return CgroupError("the \(names) controller\(missing.count == 1 ? " is" : "s are") not enabled in \(directory)/cgroup.subtree_control, so \(parent) cannot have \(missing.count == 1 ? "it" : "them"); Corral changes only cgroups it made and its own: enable them there (echo \"\(line)\" > \(directory)/cgroup.subtree_control) or give another --cgroup-parent")
    }

    /// Enables `missing` in Corral's own cgroup. The no-internal-processes rule forbids that
    /// while the cgroup has processes: if Corral is alone there it moves itself into a leaf
    /// of its own first, as a delegated service must. Undone at exit (``undoOwnChange()``).
    private static func enableInOwnCgroup(_ own: String, _ missing: [String]) throws(CgroupError) {
        let line = missing.map { "+" + $0 }.joined(separator: " ")
        do throws(CgroupError) {
            try CgroupFS.write(own + "/cgroup.subtree_control", line)
            record(own: own, leaf: nil, enabled: missing)
        } catch {
            let members = CgroupFS.pids(own + "/cgroup.procs")
            guard members == [getpid()] else {
                throw CgroupError("cannot enable \(missing.joined(separator: ", ")) below \(own): other processes share its cgroup (\(error.message)); give --cgroup-parent a delegated cgroup")
            }
            let leaf = own + "/" + leafName(enabled: missing)
            try CgroupFS.makeDirectory(leaf, existingIsFine: true)
            do throws(CgroupError) {
                try CgroupFS.write(leaf + "/cgroup.procs", String(getpid()))
                record(own: own, leaf: leaf, enabled: missing)
                try CgroupFS.write(own + "/cgroup.subtree_control", line)
            } catch {
                undoOwnChange()
                throw error
            }
        }
        CgroupParents.registerExitHook()
    }

    private static func record(own: String, leaf: String?, enabled: [String]) {
        ownChange.withLock { change in
            if change == nil { change = OwnChange(own: own, leaf: leaf, enabled: []) }
            change!.enabled += enabled.filter { !change!.enabled.contains($0) }
        }
    }

    /// At exit, after the run cgroups and parents are gone: disables what Corral enabled in
    /// its own cgroup, moves itself back there, and removes its leaf, so the cgroup is as
    /// it was (and a process can be moved into it again).
    static func undoOwnChange() {
        guard let change = ownChange.withLock({ $0 }) else { return }
        if undo(own: change.own, leaf: change.leaf, enabled: change.enabled, moving: getpid()) == nil {
            ownChange.withLock { $0 = nil }
        }
    }

    /// Disables `enabled` in `own`, moves `pid` (if any) from `leaf` back to `own` and
    /// removes `leaf`. Returns why it could not, or nil.
    @discardableResult
    static func undo(own: String, leaf: String?, enabled: [String], moving pid: Int32?) -> String? {
        let on = enabled.filter { subtreeControl(own).contains($0) }
        if !on.isEmpty {
            do throws(CgroupError) {
                try CgroupFS.write(own + "/cgroup.subtree_control", on.map { "-" + $0 }.joined(separator: " "))
            } catch { return error.message }
        }
        guard let leaf else { return nil }
        if let pid {
            do throws(CgroupError) { try CgroupFS.write(own + "/cgroup.procs", String(pid)) } catch { return error.message }
        }
        let error = CgroupFS.removeDirectory(leaf)
        return error == 0 || error == ENOENT ? nil : "rmdir \(leaf): \(SetupFailure.describe(error))"
    }
}
