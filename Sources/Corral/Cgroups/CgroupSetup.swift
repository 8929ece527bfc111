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
        let host = CgroupHost.current
        let containment: Containment
        switch configuration.containment {
        case .processGroup:
            if configuration.requireCgroup {
                return .failure(SetupFailure(stage: "cgroup", errno: 0, message: "cgroup containment is required but process-group containment was asked for"))
            }
            return fallback(job, warning: nil)
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
        do {
            switch containment {
            case .cgroupV1:
                return .cgroup(try CgroupV1Run.acquire(host: host, parent: configuration.cgroupParent, name: name, limits: job.limits))
            default:
                return .cgroup(try CgroupV2Run.create(host: host, parent: configuration.cgroupParent, name: name(), limits: job.limits))
            }
        } catch {
            if configuration.containment != .automatic {
                return .failure(SetupFailure(stage: "cgroup", errno: 0, message: "\(containment.rawValue): \(error.message)"))
            }
            return unusable(job, configuration, error.message)
        }
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
