/// An isolated run between its clone and its program's exec, watched by the reaper until
/// its init has exec'd the program or failed.
final class PendingSetup {
    /// How long an isolated setup may take before its init is killed.
    static let limitNanos: Int64 = 30_000_000_000

    var setup: Spawner.IsolatedSetup
    let plan: SpawnPlan
    let start: Int64
    let bootTicks: UInt64
    let deadline: Int64
    let continuation: RunCompletion
    var cancelled = false

    init(setup: Spawner.IsolatedSetup, plan: SpawnPlan, start: Int64, bootTicks: UInt64,
         continuation: RunCompletion) {
        self.setup = setup
        self.plan = plan
        self.start = start
        self.bootTicks = bootTicks
        self.deadline = MonotonicClock.now() + Self.limitNanos
        self.continuation = continuation
    }
}
