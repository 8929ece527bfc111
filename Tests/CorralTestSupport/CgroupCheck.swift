import Corral
import Foundation

/// What cgroup tests need to know about the host, and checks that runs leave no cgroup.
public enum CgroupCheck {
    public static let host = HostReport.inspect()

    public static var isRoot: Bool { geteuid() == 0 }

    /// cgroup v1 with memory, pids, cpuacct and freezer, usable by this process.
    public static var hasV1: Bool {
        isRoot && Set(host.cgroups.v1.map(\.controller)).isSuperset(of: ["memory", "pids", "cpuacct", "freezer"])
            && probe(.cgroupV1)
    }

    /// A cgroup v2 hierarchy this process can create run cgroups in.
    public static var hasV2: Bool { isRoot && host.cgroups.v2 != nil && probe(.cgroupV2) }

    /// cgroup v2 with the memory and pids controllers.
    public static var hasV2Controllers: Bool { hasV2 && host.cgroups.v2?.hasRunControllers == true }

    private static func probe(_ containment: RunnerConfiguration.ContainmentPreference) -> Bool {
        HostReport.inspect(configuration: RunnerConfiguration(containment: containment)).cgroups.usable
    }

    /// The parent directories of this process's run cgroups in every hierarchy.
    public static var parentDirectories: [String] {
        var result = host.cgroups.v1.map { $0.mount + ($0.ownCgroup == "/" ? "" : $0.ownCgroup) + "/corral" }
        if let v2 = host.cgroups.v2 { result.append(v2.mount + (v2.ownCgroup == "/" ? "" : v2.ownCgroup) + "/corral") }
        if let cpuset = cpusetParent { result.append(cpuset) }
        return result
    }

    /// The parent of run cgroups in the v1 cpuset hierarchy (runs that ask for CPUs have a
    /// directory of their own there), when that hierarchy is mounted.
    public static let cpusetParent: String? = {
        guard let cgroups = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8),
              let line = cgroups.split(separator: "\n").first(where: { $0.split(separator: ":").dropFirst().first?.split(separator: ",").contains("cpuset") == true }),
              let own = line.split(separator: ":", maxSplits: 2).last,
              let mounts = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return nil }
        for entry in mounts.split(separator: "\n") {
            let fields = entry.split(separator: " ")
            guard let dash = fields.firstIndex(of: "-"), fields.count > dash + 3, fields.count > 4,
                  fields[dash + 1] == "cgroup", fields[3] == "/", fields[dash + 3].split(separator: ",").contains("cpuset") else { continue }
            return String(fields[4]) + (own == "/" ? "" : String(own)) + "/corral"
        }
        return nil
    }()

    /// Run cgroups of this process that still hold a process, or a memory/v2 cgroup of a
    /// finished run that was not removed (pids, cpuacct and freezer sets are pooled empty).
    /// Corral removes a run's cgroup just after it reports, so this looks again for a
    /// moment before it answers: up to 5 s, since a suite that is not `.cgroupExclusive` may
    /// have a run of its own going in this process (one cut by a stop at 300 ms was seen);
    /// a cgroup really left stays, and is found all the same.
    public static func busyRunCgroups(owner: Int32 = getpid()) -> [String] {
        var result = busyRunCgroupsNow(owner: owner)
        var attempts = 0
        while !result.isEmpty && attempts < 500 {
            usleep(10_000)
            result = busyRunCgroupsNow(owner: owner)
            attempts += 1
        }
        return result
    }

    private static func busyRunCgroupsNow(owner: Int32) -> [String] {
        var result: [String] = []
        for parent in parentDirectories {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: parent) else { continue }
            for name in names where name.hasPrefix("run-\(owner)-") {
                let directory = parent + "/" + name
                let procs = (try? String(contentsOfFile: directory + "/cgroup.procs", encoding: .utf8)) ?? ""
                let pooled = ["/pids/", "/cpuacct/", "/freezer/"].contains { parent.contains($0) }
                if !procs.isEmpty || !pooled { result.append(directory) }
            }
        }
        return result
    }

    /// Every run cgroup of `owner`, pooled or not.
    public static func runCgroups(owner: Int32) -> [String] {
        parentDirectories.flatMap { parent in
            ((try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? [])
                .filter { $0.hasPrefix("run-\(owner)-") }.map { parent + "/" + $0 }
        }
    }
}
