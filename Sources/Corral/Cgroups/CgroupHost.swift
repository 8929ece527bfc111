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
        // Byte-wise: splitting these files by Character or with a string separator cost
        // more than the rest of a `corral run -- /bin/true` put together.
        func fields(_ line: Substring.UTF8View.SubSequence, _ separator: Character) -> [Substring] {
            line.split(separator: UInt8(ascii: separator.unicodeScalars.first!), omittingEmptySubsequences: false).map { Substring($0) }
        }
        // Controller (or "" for v2) and path, a dozen at most: an array, not a dictionary (the
        // runtime's first `[String: String]` resize looked its storage type up by mangled name).
        var ownPaths: [(controller: String, path: String)] = []
        func ownPath(_ controller: String) -> String? { ownPaths.first { $0.controller == controller }?.path }
        if let text = CgroupFS.read("/proc/self/cgroup") {
            for line in text.utf8.split(separator: UInt8(ascii: "\n")) {
                // ID:CONTROLLERS:PATH, where the path may hold colons of its own: everything
                // after the second colon (cut by index; `joined` over the fields was generic
                // code that scanned every protocol conformance of the binary at its first use).
                guard let first = line.firstIndex(of: UInt8(ascii: ":")),
                      let second = line[line.index(after: first)...].firstIndex(of: UInt8(ascii: ":")) else { continue }
                let id = Substring(line[..<first]), names = line[line.index(after: first)..<second]
                let path = String(Substring(line[line.index(after: second)...]))
                if id == "0" && names.isEmpty {
                    ownPaths.append(("", path))
                } else {
                    for controller in names.split(separator: UInt8(ascii: ",")) {
                        let name = String(Substring(controller))
                        if ownPath(name) == nil { ownPaths.append((name, path)) }
                    }
                }
            }
        }
        var unified: Unified?
        var v1: [String: Hierarchy] = [:]
        if let text = CgroupFS.read("/proc/self/mountinfo") {
            for line in text.utf8.split(separator: UInt8(ascii: "\n")) {
                // id parent major:minor root mountpoint options [optional...] - fstype source superoptions
                // (the optional fields end at a field that is a lone "-")
                let all = fields(line, " ")
                guard let dash = all.firstIndex(of: "-") else { continue }
                let left = all[..<dash]
                let right = all[(dash + 1)...]
                guard left.count >= 5, right.count >= 3 else { continue }
                let root = left[left.startIndex + 3]
                let mount = unescape(left[left.startIndex + 4])
                let type = right[right.startIndex], superOptions = right[right.startIndex + 2]
                if type == "cgroup2", unified == nil, root == "/", let own = ownPath("") {
                    let ownDirectory = mount + (own == "/" ? "" : own)
                    let controllers = CgroupFS.read(ownDirectory + "/cgroup.controllers").map {
                        Set($0.utf8.split(whereSeparator: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\n") }).map { String(Substring($0)) })
                    } ?? []
                    unified = Unified(mount: mount, ownPath: own, controllers: controllers)
                } else if type == "cgroup", root == "/" {
                    for option in superOptions.utf8.split(separator: UInt8(ascii: ",")) {
                        let name = String(Substring(option))
                        if let own = ownPath(name), v1[name] == nil {
                            v1[name] = Hierarchy(mount: mount, ownPath: own)
                        }
                    }
                }
            }
        }
        return CgroupHost(unified: unified, v1: v1)
    }

    /// A mountinfo path with its octal escapes (`\040` for a space, `\011`, `\012`, `\134`)
    /// turned back into bytes.
    static func unescape(_ field: Substring) -> String {
        let bytes = Array(field.utf8)
        guard bytes.contains(UInt8(ascii: "\\")) else { return String(field) }
        var result: [UInt8] = []
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "\\"), index + 3 < bytes.count,
               bytes[(index + 1)...(index + 3)].allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "7")).contains($0) }) {
                let value = bytes[(index + 1)...(index + 3)].reduce(0) { $0 * 8 + Int($1 - UInt8(ascii: "0")) }
                if value < 256 {
                    result.append(UInt8(value))
                    index += 4
                    continue
                }
            }
            result.append(bytes[index])
            index += 1
        }
        return String(decoding: result, as: UTF8.self)
    }
}

