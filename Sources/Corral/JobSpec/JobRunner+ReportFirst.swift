extension JobRunner {
    /// Runs the job as ``run(_:stop:)`` does, but hands its report back as soon as it is
    /// made, with the removal of its working directory still under way in `removal` (on a
    /// thread of its own). The unmount of a size-limited working directory (a tmpfs) waits
    /// for an RCU grace period, about 3 ms: a caller that hands the report on (a queue's
    /// write, an HTTP answer) does that meanwhile. The caller bounds how many removals it
    /// leaves under way, and awaits them before it ends (nothing of a job may be left).
    public func runReportingFirst(_ spec: JobSpec, stop: RunStop? = nil) async throws(CorralError) -> (report: JobReport, removal: Task<Void, Never>) {
        do {
            try spec.checkProcessReferences()
        } catch {
            throw CorralError(.invalidJob, error.description)
        }
        let (report, layout) = try await runKeepingLayout(spec, stop: stop)
        let keep = spec.workdir.keep
        let removal = Task { await Blocking.run { layout.finish(keep: keep) } }
        return (report, removal)
    }
}
