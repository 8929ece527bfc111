import Synchronization

/// Chooses the containment of a run and creates its cgroup.
enum CgroupSetup {
    enum Outcome {
        case cgroup(any RunCgroup)
        /// Process-group mode, with the reason when cgroups were wanted but not usable.
        case processGroup(warning: String?)
        case failure(SetupFailure)
    }

    private static let sequence = Atomic<UInt64>(1)

    static func make(for job: Job, configuration: RunnerConfiguration) -> Outcome {
        if configuration.containment == .processGroup {
            // Decided before the host's cgroups are read: a process-group run needs nothing of them.
            if configuration.requireCgroup {
                return .failure(SetupFailure(stage: "cgroup", errno: 0, message: "cgroup containment is required but process-group containment was asked for"))
            }
            return fallback(job, warning: nil)
        }
        let host = CgroupHost.current
        let containment: Containment
        switch configuration.containment {
        case .processGroup: return fallback(job, warning: nil)
        case .cgroupV2: containment = .cgroupV2
        case .cgroupV1: containment = .cgroupV1
        case .automatic:
            if host.v2HasControllers {
                containment = .cgroupV2
            } else if host.hasV1 {
                containment = .cgroupV1
            } else {
                let reason = host.unified == nil
                    ? "no cgroup hierarchy with the memory, pids, cpuacct and freezer controllers is mounted"
                    : "the cgroup v2 hierarchy lacks the memory and pids controllers, and no cgroup v1 hierarchy has them"
                return unusable(job, configuration, reason)
            }
        }
        StaleCgroups.cleanOnce(containment, host: host, parent: configuration.cgroupParent)
        let name = { CgroupOwner.current.runName(sequence.wrappingAdd(1, ordering: .relaxed).oldValue) }
        let limits = cgroupLimits(job)
        do {
            switch containment {
            case .cgroupV1:
                return .cgroup(try CgroupV1Run.acquire(host: host, parent: configuration.cgroupParent, name: name, limits: limits, cpus: job.cpus))
            default:
                return .cgroup(try CgroupV2Run.create(host: host, parent: configuration.cgroupParent, name: name(), limits: limits, cpus: job.cpus))
            }
        } catch {
            // A parent asked for by name that cannot be used is an error, not a quiet
            // change to process-group mode (where --memory would be RLIMIT_AS).
            // Nor is a cpuset that cannot be had for a run that asked for CPUs.
            if configuration.containment != .automatic || configuration.cgroupParent != nil || job.cpus != nil {
                return .failure(SetupFailure(stage: "cgroup", errno: 0, message: "\(containment.rawValue): \(error.message)"))
            }
            return unusable(job, configuration, error.message)
        }
    }

    /// The limits written to the run's cgroup. `--processes N` means N processes of the
    /// program's own; an isolated run's cgroup also holds Corral's init (PID 1 of the
    /// run's PID namespace, which forks the program and stays until it ends), so its
    /// `pids.max` is one more.
    static func cgroupLimits(_ job: Job) -> Limits {
        var limits = job.limits
        if job.isolation != nil, let processes = limits.processes {
            limits.processes = processes + 1
        }
        return limits
    }

    private static func unusable(_ job: Job, _ configuration: RunnerConfiguration, _ reason: String) -> Outcome {
        if configuration.requireCgroup {
            return .failure(SetupFailure(stage: "cgroup", errno: 0, message: "cgroups are required but not usable: \(reason)"))
        }
        return fallback(job, warning: "cgroups are not usable (\(reason)); running in process-group mode")
    }

    private static func fallback(_ job: Job, warning: String?) -> Outcome {
        if job.limits.processes != nil {
            return .failure(SetupFailure(stage: "cgroup", errno: 0, message: "the process limit needs a pids cgroup, and none is usable" + (warning.map { ": \($0)" } ?? "")))
        }
        return .processGroup(warning: warning)
    }
}
