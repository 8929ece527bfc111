import Synchronization

/// Whether a run was cancelled (its task, or its ``RunStop``) before the reaper got to
/// start it. The reaper looks at it when it takes the run's start command, so a cancel
/// command that arrives first, or after the run is over, needs no memory of its own: the
/// reaper ignores a cancel for a run it does not know.
final class RunCancellation: Sendable {
    private let cancelled = Atomic<Bool>(false)
    private let stop: RunStop?

    init(stop: RunStop?) {
        self.stop = stop
    }

    /// Set before the cancel command is sent, so the reaper sees one or the other.
    func cancel() {
        cancelled.store(true, ordering: .sequentiallyConsistent)
    }

    var isCancelled: Bool {
        cancelled.load(ordering: .sequentiallyConsistent) || stop?.isStopped == true
    }
}
