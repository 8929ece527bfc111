/// A spec's `cpus` (``ProcessSpec/cpus``) against CPUs given from outside: a server slot's
/// CPU, `corral run --spec --cpus`. A process that names its own CPUs keeps them; they must
/// then be among those given.
extension JobDocument {
    /// Every process that names no CPUs is pinned to `cpus`.
    public func pinning(_ cpus: CPUList) -> JobDocument {
        switch self {
        case .job(let job): .job(job.pinning(cpus))
        case .steps(let steps): .steps(steps.pinning(cpus))
        }
    }

    /// Every process's own CPUs are within `allowed`; otherwise the field that is not.
    public func checkCPUs(within allowed: CPUList) throws(SpecError) {
        switch self {
        case .job(let job): try job.checkCPUs(within: allowed, prefix: "")
        case .steps(let steps):
            for (index, step) in steps.steps.enumerated() {
                try step.job.checkCPUs(within: allowed, prefix: "steps[\(index)].")
                if case .custom(let checker) = step.checker, let cpus = checker.process.cpus, !cpus.isSubset(of: allowed) {
                    throw SpecError("steps[\(index)].checker.cpus", Self.outside(cpus, allowed))
                }
            }
        }
    }

    static func outside(_ cpus: CPUList, _ allowed: CPUList) -> String {
        "\"\(cpus)\" is not within the CPUs given to this server or run (\(allowed))"
    }
}

extension JobSpec {
    public func pinning(_ cpus: CPUList) -> JobSpec {
        var copy = self
        for index in copy.processes.indices where copy.processes[index].cpus == nil {
            copy.processes[index].cpus = cpus
        }
        return copy
    }

    func checkCPUs(within allowed: CPUList, prefix: String) throws(SpecError) {
        for (index, process) in processes.enumerated() {
            if let cpus = process.cpus, !cpus.isSubset(of: allowed) {
                throw SpecError("\(prefix)processes[\(index)].cpus", JobDocument.outside(cpus, allowed))
            }
        }
    }
}

extension StepsSpec {
    public func pinning(_ cpus: CPUList) -> StepsSpec {
        var copy = self
        for index in copy.steps.indices {
            copy.steps[index].job = copy.steps[index].job.pinning(cpus)
            if case .custom(var checker) = copy.steps[index].checker, checker.process.cpus == nil {
                checker.process.cpus = cpus
                copy.steps[index].checker = .custom(checker)
            }
        }
        return copy
    }
}
