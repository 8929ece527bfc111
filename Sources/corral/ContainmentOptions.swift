import ArgumentParser
import Corral

extension RunnerConfiguration.ContainmentPreference: ExpressibleByArgument {}
extension Isolation.Network: ExpressibleByArgument {}

/// How runs are contained; shared by `run`, `doctor` and `cleanup`.
struct ContainmentOptions: ParsableArguments {
    @Option(help: ArgumentHelp("auto (cgroup v2 with memory and pids, else v1, else a process group), cgroup-v2, cgroup-v1 or process-group.", valueName: "mode"))
    var containment: RunnerConfiguration.ContainmentPreference = .automatic

    @Option(name: .customLong("cgroup-parent"), help: ArgumentHelp("Where run cgroups go, relative to each hierarchy's root (default: corral below Corral's own cgroup).", valueName: "path"))
    var cgroupParent: String?

    @Flag(name: .customLong("require-cgroup"), help: "Refuse to run (exit 125) rather than fall back to process-group containment.")
    var requireCgroup = false

    var configuration: RunnerConfiguration {
        RunnerConfiguration(containment: containment, cgroupParent: cgroupParent, requireCgroup: requireCgroup)
    }
}
