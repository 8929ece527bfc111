/// What the host offers: where the cgroup hierarchies are mounted, and where this process
/// sits in each. Read once, from /proc/self/mountinfo and /proc/self/cgroup.
struct CgroupHost: Sendable {
    /// A v1 hierarchy of one controller (or several mounted together).
    struct Hierarchy: Sendable, Hashable {
        var mount: String
        /// This process's cgroup in it, relative to the mount ("/" or "/a/b").
        var ownPath: String
    }

    struct Unified: Sendable, Hashable {
        var mount: String
        var ownPath: String
        /// Controllers available to this process's cgroup (its `cgroup.controllers`).
        var controllers: Set<String>
    }

    var unified: Unified?
    /// memory, pids, cpuacct, freezer (and any other v1 controller), by name.
    var v1: [String: Hierarchy]

    static let current = CgroupHost.detect()

    static let v1Controllers = ["memory", "pids", "cpuacct", "freezer"]

    /// All four v1 controllers Corral needs are mounted.
    var hasV1: Bool { Self.v1Controllers.allSatisfy { v1[$0] != nil } }

    /// The v2 hierarchy has the controllers a run with limits needs.
    var v2HasControllers: Bool {
        guard let unified else { return false }
        return unified.controllers.isSuperset(of: ["memory", "pids"])
    }

    static func detect() -> CgroupHost {
        var ownPaths: [String: String] = [:] // controller (or "" for v2) → path
        if let text = CgroupFS.read("/proc/self/cgroup") {
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
                guard parts.count == 3 else { continue }
                if parts[0] == "0" && parts[1].isEmpty {
                    ownPaths[""] = String(parts[2])
                } else {
                    for controller in parts[1].split(separator: ",") { ownPaths[String(controller)] = String(parts[2]) }
                }
            }
        }
        var unified: Unified?
        var v1: [String: Hierarchy] = [:]
        if let text = CgroupFS.read("/proc/self/mountinfo") {
            for line in text.split(separator: "\n") {
                // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
                let halves = line.split(separator: " - ", omittingEmptySubsequences: false)
                guard halves.count == 2 else { continue }
                let left = halves[0].split(separator: " ")
                let right = halves[1].split(separator: " ")
                guard left.count >= 5, right.count >= 3 else { continue }
                let root = String(left[3])
                let mount = unescape(String(left[4]))
                if right[0] == "cgroup2", unified == nil, root == "/", let own = ownPaths[""] {
                    let ownDirectory = mount + (own == "/" ? "" : own)
                    let controllers = CgroupFS.read(ownDirectory + "/cgroup.controllers").map {
                        Set($0.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
                    } ?? []
                    unified = Unified(mount: mount, ownPath: own, controllers: controllers)
                } else if right[0] == "cgroup", root == "/" {
                    for option in right[2].split(separator: ",") {
                        let name = String(option)
                        if let own = ownPaths[name], v1[name] == nil {
                            v1[name] = Hierarchy(mount: mount, ownPath: own)
                        }
                    }
                }
            }
        }
        return CgroupHost(unified: unified, v1: v1)
    }

    private static func unescape(_ path: String) -> String {
        path.split(separator: "\\040", omittingEmptySubsequences: false).joined(separator: " ")
    }
}

