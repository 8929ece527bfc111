import ArgumentParser
import Corral
import CorralCommandLine
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Report what this host offers Corral: kernel, cgroups, namespaces, seccomp.",
        discussion: "Exit 0 when full (cgroup) containment is available, 1 otherwise."
    )

    @OptionGroup var containmentOptions: ContainmentOptions

    @Flag(help: "Print the report as JSON.")
    var json = false

    func run() throws {
        let report = HostReport.inspect(configuration: containmentOptions.configuration)
        if json {
            try JSONOutput.write(report)
        } else {
            try StandardOutput.write(Self.text(report) + "\n")
        }
        if !report.fullContainment { throw ExitCode(1) }
    }

    static func text(_ report: HostReport) -> String {
        var lines = ["kernel: \(report.kernel)", "root: \(report.isRoot ? "yes" : "no")"]
        if let v2 = report.cgroups.v2 {
            let controllers = v2.controllers.isEmpty ? "none" : v2.controllers.joined(separator: " ")
            lines.append("cgroup v2: \(v2.mount) (own cgroup \(v2.ownCgroup); controllers: \(controllers))")
        } else {
            lines.append("cgroup v2: not mounted")
        }
        if report.cgroups.v1.isEmpty {
            lines.append("cgroup v1: none of memory, pids, cpuacct, freezer mounted")
        }
        for hierarchy in report.cgroups.v1 {
            lines.append("cgroup v1 \(hierarchy.controller): \(hierarchy.mount) (own cgroup \(hierarchy.ownCgroup))")
        }
        lines.append("containment: \(report.cgroups.selected.rawValue)" + (report.cgroups.problem.map { " (\($0))" } ?? ""))
        let cold = report.coldMigration
        if !cold.runsMigrate {
            lines.append("cold cgroup migration: none (\(report.cgroups.selected == .processGroup ? "no cgroups" : "runs are created inside their cgroup"))")
        } else if cold.paysGracePeriod {
            let who = report.cgroups.selected == .cgroupV2 ? "an isolated run (a plain run is created inside its cgroup)" : "a run"
            lines.append("cold cgroup migration: slow here: \(who) after an idle moment waits for an RCU grace period "
                + "(about 15 ms) to join its cgroup; to avoid it, \(cold.advice ?? "")")
        } else {
            lines.append("cold cgroup migration: fast (" + (cold.favordynmods ? "a cgroup hierarchy is mounted with favordynmods" : "rcu_expedited is 1") + ")")
        }
        lines.append("namespaces: \(report.namespaces.joined(separator: " "))"
            + (report.maxUserNamespaces.map { " (max user namespaces \($0))" } ?? ""))
        lines.append("seccomp: \(report.seccomp.available ? report.seccomp.actions.joined(separator: " ") : "not available"); libseccomp.so.2: \(report.seccomp.libseccomp ? "loadable" : "not found"); a killed call is \(report.seccomp.killsNamed ? "named (the kernel's audit records are readable)" : "not named (the kernel's audit records are root's to read here)")")
        lines.append("isolation (--isolate): \(report.isolation)" + (report.isolationSeccomp ? ", with seccomp" : ", without seccomp (use --seccomp none)"))
        lines.append(report.fullContainment ? "full containment: yes" : "full containment: no")
        return lines.joined(separator: "\n")
    }
}
