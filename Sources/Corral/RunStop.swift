import Synchronization

/// Stops runs from outside the task that awaits them: ``stop()`` kills every run started
/// with this signal, running or yet to start, and each ends with status `cancelled`, as
/// when its task is cancelled. A server uses it to stop a job whose client went away, or
/// every job at shutdown, without a task of its own per job.
///
/// ```swift
/// let stop = RunStop()
/// async let report = JobRunner().run(spec, stop: stop)
/// stop.stop()
/// ```
public final class RunStop: Sendable {
    private struct State {
        var stopped = false
        var reason: String?
        var runs: Set<UInt64> = []
    }

    private let state = Mutex(State())

    public init() {}

    public var isStopped: Bool {
        state.withLock { $0.stopped }
    }

    /// Why the first ``stop(reason:)`` that gave one stopped the runs; each run it stops says
    /// so in its report's message.
    public var reason: String? {
        state.withLock { $0.reason }
    }

    public func stop(reason: String? = nil) {
        let runs = state.withLock { state -> Set<UInt64> in
            if !state.stopped { state.reason = reason }
            state.stopped = true
            return state.runs
        }
        guard !runs.isEmpty, case .success(let supervisor) = Supervisor.shared else { return }
        for id in runs { supervisor.submit(.cancel(id: id)) }
    }

    /// Whether the run may start (false: it was stopped already).
    func register(_ id: UInt64) -> Bool {
        state.withLock { state in
            guard !state.stopped else { return false }
            state.runs.insert(id)
            return true
        }
    }

    func unregister(_ id: UInt64) {
        _ = state.withLock { $0.runs.remove(id) }
    }
}
