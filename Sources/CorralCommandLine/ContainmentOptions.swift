import ArgumentParser
import Corral

extension RunnerConfiguration.ContainmentPreference: ExpressibleByArgument {}
extension Isolation.Network: ExpressibleByArgument {}

/// How runs are contained; shared by `run`, `doctor` and `cleanup`.
public struct ContainmentOptions: ParsableArguments {
    public init() {}

    @Option(help: ArgumentHelp("auto (cgroup v2 with memory and pids, else v1, else a process group), cgroup-v2, cgroup-v1 or process-group.", valueName: "mode"))
    public var containment: RunnerConfiguration.ContainmentPreference = .automatic

    @Option(name: .customLong("cgroup-parent"), help: ArgumentHelp("Where run cgroups go, relative to each hierarchy's root (default: corral below Corral's own cgroup).", valueName: "path"))
    public var cgroupParent: String?

    @Flag(name: .customLong("require-cgroup"), help: "Refuse to run (exit 125) rather than fall back to process-group containment.")
    public var requireCgroup = false

    public var values: ContainmentArguments {
        ContainmentArguments(containment: containment, cgroupParent: cgroupParent, requireCgroup: requireCgroup)
    }

    public var configuration: RunnerConfiguration { values.configuration }
}

/// The containment flags as given.
public struct ContainmentArguments: Sendable, Equatable {
    public var containment: RunnerConfiguration.ContainmentPreference = .automatic
    public var cgroupParent: String?
    public var requireCgroup = false

    public init(containment: RunnerConfiguration.ContainmentPreference = .automatic, cgroupParent: String? = nil, requireCgroup: Bool = false) {
        self.containment = containment
        self.cgroupParent = cgroupParent
        self.requireCgroup = requireCgroup
    }

    public var configuration: RunnerConfiguration {
        RunnerConfiguration(containment: containment, cgroupParent: cgroupParent, requireCgroup: requireCgroup)
    }
}
