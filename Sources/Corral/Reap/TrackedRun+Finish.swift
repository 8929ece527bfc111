#if canImport(Glibc)
import Glibc
#endif

/// The report of a run nothing is left of, and the tidying after it.
extension TrackedRun {
    func finish() {
        phase = .finished
        // Every writer is gone: what is left in the pipes is all there will be.
        for capture in captures {
            capture.drain()
            if capture.overLimit { outcome.captureOverflows.append((capture.stream, capture.max, capture.isRelay)) }
            if let error = capture.sinkError {
                outcome.warnings.append("\(capture.stream): writing to the inherited file failed (\(SetupFailure.describe(error))); the rest was dropped")
            }
            guard !capture.isRelay else { continue }
            if capture.stream == "stdout" { outcome.standardOutput = capture.output } else { outcome.standardError = capture.output }
        }
        if let limit = plan.job.limits.output {
            for fd in plan.outputFiles {
                var info = stat()
                if fstat(fd, &info) == 0, UInt64(info.st_size) > limit {
                    outcome.outputExceeded = true
                    _ = ftruncate(fd, off_t(limit))
                }
            }
        }
        outcome.processes = knownPids.count
        outcome.memoryPeak = UInt64(max(0, memoryPeak))
        if let cgroup {
            // The cgroup saw every process of the run, reaped by us or not.
            if let cpu = cgroup.cpu() {
                outcome.userMicros = cpu.user
                outcome.systemMicros = max(0, cpu.total - cpu.user)
            }
            outcome.memoryPeak = cgroup.memoryPeak() ?? outcome.memoryPeak
            outcome.oomKills = cgroup.oomKills()
            outcome.processLimitHit = cgroup.processLimitHits() > 0
        }
        // Tidying after the report is out overlaps with whatever the caller does next; the
        // exit hook waits for it (``CgroupParents/releaseAll()``). Installed here too, not
        // only with a cgroup: a run without one (rootless, process-group mode) still has its
        // isolation staging directory to remove, and `corral run` exits right after the report
        // (two rootless runs at once left one's /tmp/corral-root-* behind).
        CgroupParents.registerExitHook()
        CgroupParents.tidying.add(1, ordering: .sequentiallyConsistent)
        continuation.resume(returning: Verdict.report(for: outcome))
        memoryEvents?.close()
        cgroup?.remove()
        plan.close()
        if pidfd >= 0 { close(pidfd) }
        CgroupParents.tidying.subtract(1, ordering: .sequentiallyConsistent)
    }
}
