import CCorral
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What other threads ask of the reaper.
enum SupervisorCommand: Sendable {
    case start(id: UInt64, plan: SpawnPlan, cancellation: RunCancellation, continuation: RunCompletion)
    case cancel(id: UInt64)
}

/// The one reaper of the process. A dedicated thread (never a cooperative-pool thread)
/// spawns every run, so PR_SET_PDEATHSIG ties the children to a thread that lives as long
/// as the process, and it alone waits: for each run's process group and for the escapees
/// attributed to it, never `wait4(-1)`, so no run steals another's child, nor the host's.
///
/// Corral makes the whole process a child subreaper: orphans of the runs come back to it.
final class Supervisor: @unchecked Sendable {
    static let shared: Result<Supervisor, CorralError> = Supervisor.start()

    private let wakeDescriptor: Int32
    private let inbox = Mutex<[SupervisorCommand]>([])
    private let ids = Atomic<UInt64>(1)
    let processID = getpid()
    let ownSession = getsid(0)

    // Reaper-thread state.
    var threadID: Int32 = 0
    var runs: [UInt64: TrackedRun] = [:]
    /// Isolated runs whose init is still building the sandbox: watched, never waited for,
    /// so one run's setup never holds up the others.
    var settingUp: [UInt64: PendingSetup] = [:]
    /// Children of ours in our own session: the host's, left alone.
    var foreignChildren: Set<Int32> = []
    var scannedThisPass = false
    /// The main thread's `stat` and `children` files, opened when the reaper starts.
    var mainThreadFiles: ProcessFiles??

    private init(wakeDescriptor: Int32) {
        self.wakeDescriptor = wakeDescriptor
    }

    private static func start() -> Result<Supervisor, CorralError> {
        guard corral_set_child_subreaper() == 0 else {
            return .failure(CorralError(.system, "prctl(PR_SET_CHILD_SUBREAPER): \(SetupFailure.describe(errno))"))
        }
        let wake = corral_eventfd()
        guard wake >= 0 else {
            return .failure(CorralError(.system, "eventfd: \(SetupFailure.describe(errno))"))
        }
        let supervisor = Supervisor(wakeDescriptor: wake)
        var thread = pthread_t()
        let context = Unmanaged.passRetained(supervisor).toOpaque()
        let created = pthread_create(&thread, nil, { context in
            let supervisor = Unmanaged<Supervisor>.fromOpaque(context!).takeRetainedValue()
            supervisor.loop()
            return nil
        }, context)
        guard created == 0 else {
            Unmanaged<Supervisor>.fromOpaque(context).release()
            return .failure(CorralError(.system, "pthread_create: \(SetupFailure.describe(created))"))
        }
        pthread_detach(thread)
        return .success(supervisor)
    }

    func nextID() -> UInt64 {
        ids.wrappingAdd(1, ordering: .relaxed).oldValue
    }

    func submit(_ command: SupervisorCommand) {
        inbox.withLock { $0.append(command) }
        var one: UInt64 = 1
        _ = write(wakeDescriptor, &one, MemoryLayout<UInt64>.size)
    }

    // MARK: The reaper thread

    private func loop() {
        threadID = corral_gettid()
        // A name to tell it by in `top -H` and /proc/PID/task (the accounting tests measure
        // it); by prctl, never through this thread's own /proc task directory (see
        // ``scanChildren()``).
        _ = corral_name_thread("corral-reaper")
        // Opened now, for the life of the process (two descriptors from the start, not from
        // the first orphan scan of some later run).
        mainThreadFiles = .some(ProcessFiles(processID))
        var descriptors: [pollfd] = []
        while true {
            descriptors.removeAll(keepingCapacity: true)
            descriptors.append(pollfd(fd: wakeDescriptor, events: Int16(POLLIN), revents: 0))
            for pending in settingUp.values {
                descriptors.append(pollfd(fd: pending.setup.descriptor, events: Int16(POLLIN), revents: 0))
            }
            for run in runs.values {
                if let fd = run.watchedDescriptor {
                    descriptors.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0))
                }
                for fd in run.captureDescriptors {
                    descriptors.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0))
                }
                if let event = run.eventDescriptor {
                    descriptors.append(pollfd(fd: event.descriptor, events: event.events, revents: 0))
                }
            }
            _ = poll(&descriptors, nfds_t(descriptors.count), timeout())
            let signalled = Set(descriptors.filter { $0.revents != 0 }.map(\.fd))
            var counter: UInt64 = 0
            _ = read(wakeDescriptor, &counter, MemoryLayout<UInt64>.size)
            let commands = inbox.withLock { commands in
                defer { commands.removeAll() }
                return commands
            }
            for command in commands { handle(command) }
            serviceSetups()
            for run in runs.values {
                if let event = run.eventDescriptor, signalled.contains(event.descriptor) { run.memoryEventSignalled() }
            }
            service()
        }
    }

    private func timeout() -> Int32 {
        guard !runs.isEmpty || !settingUp.isEmpty else { return -1 }
        let now = MonotonicClock.now()
        var wake = settingUp.values.map(\.deadline).min() ?? Int64.max
        for run in runs.values {
            wake = min(wake, run.isDraining ? now + TrackedRun.drainPollNanos : run.nextWake)
        }
        let millis = (wake - now + 999_999) / 1_000_000
        return Int32(clamping: max(0, millis))
    }

    private func handle(_ command: SupervisorCommand) {
        switch command {
        case .cancel(let id):
            if let run = runs[id] {
                run.stop(.cancelled)
            } else if let pending = settingUp[id] {
                // Killing the init ends the setup (EOF) and takes the namespace with it.
                pending.cancelled = true
                _ = kill(pending.setup.pid, SIGKILL)
            }
            // Otherwise the run is over, or not started yet, and its start command will
            // find it cancelled.
        case .start(let id, let plan, let cancellation, let continuation):
            let start = MonotonicClock.now()
            if cancellation.isCancelled {
                reportCancelled(plan, continuation)
                return
            }
            let bootTicks = Self.bootTicks()
            if plan.job.isolation != nil {
                let started = Spawner.startIsolated(plan)
                plan.cgroup?.closeJoinDescriptors()
                plan.closeHandedOver()
                switch started {
                case .failed(let failure):
                    settle(.failed(failure), id: id, plan: plan, start: start, bootTicks: bootTicks, continuation: continuation)
                case .settingUp(let setup):
                    settingUp[id] = PendingSetup(setup: setup, plan: plan, start: start, bootTicks: bootTicks,
                                                 continuation: continuation)
                }
                return
            }
            let spawned = Spawner.spawn(plan)
            plan.cgroup?.closeJoinDescriptors()
            plan.closeHandedOver()
            settle(spawned, id: id, plan: plan, start: start, bootTicks: bootTicks, continuation: continuation)
        }
    }

    /// A started run is tracked from now on; a failed one is reported at once.
    private func settle(_ spawned: Spawner.Outcome, id: UInt64, plan: SpawnPlan, start: Int64, bootTicks: UInt64,
                        continuation: RunCompletion) {
        switch spawned {
        case .failed(let failure):
            plan.cgroup?.killAll()
            plan.cgroup?.remove()
            plan.close()
            var outcome = RunOutcome(limits: plan.job.limits)
            outcome.setupFailure = failure
            outcome.containment = plan.cgroup?.containment ?? .processGroup
            outcome.warnings = plan.warnings
            outcome.wallNanos = MonotonicClock.now() - start
            outcome.startInstant = start
            continuation.resume(returning: Verdict.report(for: outcome))
        case .started(let process):
            runs[id] = TrackedRun(id: id, plan: plan, process: process, start: start,
                                  startBootTicks: bootTicks, continuation: continuation)
        }
    }

    /// A run cancelled before its program ran: its cgroup and descriptors go, its report
    /// says `cancelled`.
    private func reportCancelled(_ plan: SpawnPlan, _ continuation: RunCompletion) {
        plan.cgroup?.remove()
        plan.close()
        var outcome = RunOutcome(limits: plan.job.limits)
        outcome.stopReason = .cancelled
        continuation.resume(returning: Verdict.report(for: outcome))
    }

    /// Isolated setups that ended (the program exec'd, or the setup failed), were
    /// cancelled, or ran past their 30 s.
    private func serviceSetups() {
        guard !settingUp.isEmpty else { return }
        let now = MonotonicClock.now()
        for (id, pending) in settingUp {
            var setup = pending.setup
            var outcome = Spawner.readSetup(&setup, plan: pending.plan)
            pending.setup = setup
            if outcome == nil && now >= pending.deadline {
                outcome = Spawner.abandonSetup(setup, plan: pending.plan)
            }
            guard let outcome else { continue }
            settingUp[id] = nil
            if pending.cancelled {
                if case .started(let process) = outcome {
                    // Exec'd just before the kill: track it to its (immediate) end.
                    runs[id] = TrackedRun(id: id, plan: pending.plan, process: process, start: pending.start,
                                          startBootTicks: pending.bootTicks, continuation: pending.continuation)
                    runs[id]?.stop(.cancelled)
                    continue
                }
                pending.plan.cgroup?.killAll()
                reportCancelled(pending.plan, pending.continuation)
                continue
            }
            settle(outcome, id: id, plan: pending.plan, start: pending.start, bootTicks: pending.bootTicks,
                   continuation: pending.continuation)
        }
    }

    private func service() {
        guard !runs.isEmpty else { return }
        scannedThisPass = false
        for run in runs.values {
            run.drainCaptures()
            run.reap()
        }
        if runs.values.contains(where: { $0.isTickDue }) {
            scanChildren()
        }
        var finished: [UInt64] = []
        for (id, run) in runs {
            run.advance { if !scannedThisPass { scanChildren() } }
            if run.phase == .finished { finished.append(id) }
        }
        for id in finished { runs[id] = nil }
    }

    private static func bootTicks() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_BOOTTIME, &time)
        let ticks = Int64(time.tv_sec) * ProcFS.ticksPerSecond + Int64(time.tv_nsec) * ProcFS.ticksPerSecond / 1_000_000_000
        return UInt64(max(0, ticks))
    }
}
