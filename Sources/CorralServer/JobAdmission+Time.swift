import Corral

/// The longest an admitted job may hold its slot: the ceiling `--max-job-time`. Each run is
/// bounded by its wall time, but a client chose how many there were: 64 steps of 1000 tests
/// at the 300 s ceiling held one of the server's slots for 222 days. A job's time by its own
/// limits is the sum over its steps of each run in turn: a step without tests runs its
/// processes at once (the longest of their wall times); a step with tests runs them once per
/// test, each time with its custom checker after them. A job that could take longer is
/// refused before anything runs, as a limit over its ceiling is.
extension JobAdmission {
    func bound(_ document: JobDocument) throws(SpecError) {
        let (total, path, what): (Duration, String, String)
        switch document {
        case .job(let spec):
            total = Self.longestWall(spec.processes)
            (path, what) = ("processes", "a job whose processes run for up to \(LimitValue.describe(total))")
        case .steps(let steps):
            var sum = Duration.zero
            for step in steps.steps {
                var run = Self.longestWall(step.job.processes)
                if case .custom(let checker) = step.checker, !step.tests.isEmpty {
                    run += checker.process.limits.wallTime ?? .zero
                }
                sum += run * max(1, step.tests.count)
            }
            total = sum
            (path, what) = ("steps", "steps whose runs in turn take up to \(LimitValue.describe(total)) by their wall times")
        }
        guard total > ceilings.jobTime else { return }
        throw SpecError(path, "\(what), over this server's ceiling of \(LimitValue.describe(ceilings.jobTime)) (--max-job-time): "
                        + "give the processes a shorter limits.wallTime (each that sets none has \(LimitValue.describe(defaults.wallTime(forCPU: defaults.cpuTime, under: ceilings)))), or run fewer tests")
    }

    /// Processes that run at once: the longest of their wall times (each admitted one has one).
    private static func longestWall(_ processes: [ProcessSpec]) -> Duration {
        processes.compactMap(\.limits.wallTime).max() ?? .zero
    }
}
