import Corral
import Synchronization

/// Admits jobs: at most `parallelism` run at once, at most `queueLimit` more wait (first come,
/// first served), the rest are refused. It knows every job in flight, so that a shutdown can
/// refuse the waiting ones and, after the grace period, cancel the running ones. Each
/// running job holds one of the slots 0..<parallelism (a slot's CPU, with `--cpus`).
final class Dispatcher: Sendable {
    enum Refusal: Error, Sendable {
        /// Every slot and every place in the queue is taken; retry after about this many seconds.
        case overloaded(retryAfter: Int)
        case shuttingDown
    }

    struct Counts: Sendable, Equatable {
        var running: Int
        var queued: Int
    }

    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Int, any Error>
    }

    private struct State {
        var running = 0
        /// Slots no job holds; the lowest is taken first.
        var freeSlots: [Int] = []
        var waiting: [Waiter] = []
        /// The running jobs' stops, for a shutdown.
        var stops: [UInt64: RunStop] = [:]
        /// Tickets taken whose job has not asked for a slot yet ...
        var issued: Set<UInt64> = []
        /// ... and those of them withdrawn meanwhile. A ticket that is neither, nor waiting,
        /// is running or done: withdrawing it does nothing, and leaves nothing behind.
        var withdrawn: Set<UInt64> = []
        var shuttingDown = false
        var nextID: UInt64 = 0
        /// Moving average of the jobs' wall time, for `Retry-After`.
        var averageSeconds = 1.0
    }

    let parallelism: Int
    let queueLimit: Int
    /// With `--cpus`: slot k's CPU is `slotCPUs[k]`; nil: runs are not pinned.
    let slotCPUs: [CPUList]?
    /// The working directories of answered jobs still being removed (at most `parallelism`);
    /// ``drain(grace:)`` waits for them.
    let removals: RemovalBacklog
    /// A job still in its slot this long after it got it is stopped (``Ceilings/jobDeadline``):
    /// admission bounds what a job's own limits let it take, this bounds the rest (file work
    /// between its runs, checkers, collection).
    let jobDeadline: Duration?
    private static let deadlineReason = "stopped by the server: the job was still in its slot"

    /// Whether `stop` was stopped by a job's deadline (such a job is not given back to a
    /// queue at a drain: it would only reach its deadline again).
    static func stoppedAtDeadline(_ stop: RunStop) -> Bool {
        stop.reason?.hasPrefix(deadlineReason) == true
    }

    private let state: Mutex<State>
    private let onChange: @Sendable (Counts) -> Void

    init(parallelism: Int, queueLimit: Int, cpus: CPUList? = nil, jobDeadline: Duration? = nil,
         onChange: @escaping @Sendable (Counts) -> Void = { _ in }) {
        self.jobDeadline = jobDeadline
        slotCPUs = cpus.map { list in list.cpus.prefix(parallelism).compactMap { try? CPUList(cpus: [$0]) } }
        self.parallelism = parallelism
        self.queueLimit = queueLimit
        self.onChange = onChange
        removals = RemovalBacklog(limit: parallelism)
        var initial = State()
        initial.freeSlots = Array((0..<max(parallelism, 0)).reversed())
        state = Mutex(initial)
    }

    /// What the dispatcher remembers of tickets: all zero when no job waits or runs.
    var bookkeeping: (issued: Int, withdrawn: Int, stops: Int, waiting: Int) {
        state.withLock { ($0.issued.count, $0.withdrawn.count, $0.stops.count, $0.waiting.count) }
    }

    var isShuttingDown: Bool {
        state.withLock { $0.shuttingDown }
    }

    var counts: Counts {
        state.withLock { Counts(running: $0.running, queued: $0.waiting.count) }
    }

    /// A place in line, taken before waiting so that it can be withdrawn (``withdraw(_:)``).
    struct Ticket: Sendable, Hashable {
        fileprivate let id: UInt64
    }

    func ticket() -> Ticket {
        state.withLock { state in
            state.nextID += 1
            state.issued.insert(state.nextID)
            return Ticket(id: state.nextID)
        }
    }

    /// Runs `job` in the calling task once a slot is free. Throws ``Refusal`` when there is
    /// no room or the server is shutting down, `CancellationError` when the caller is
    /// cancelled or the ticket withdrawn while it waits. A shutdown stops the job through
    /// `stop` (``cancelRunning()``).
    func run<T: Sendable>(_ ticket: Ticket, stop: RunStop, _ job: () async -> T) async throws -> T {
        try await run(ticket, stop: stop, inSlot: { _ in await job() })
    }

    /// The same; `job` is told the slot it holds (0..<parallelism), which no other job
    /// holds while it runs.
    func run<T: Sendable>(_ ticket: Ticket, stop: RunStop, inSlot job: (Int) async -> T) async throws -> T {
        let id = ticket.id
        let slot = try await acquire(id)
        let started = ContinuousClock.now
        state.withLock { $0.stops[id] = stop }
        let deadline = jobDeadline.map { limit in
            Task {
                try? await Task.sleep(for: limit)
                if !Task.isCancelled {
                    stop.stop(reason: "\(Self.deadlineReason) \(LimitValue.describe(limit)) after it got it (--max-job-time, a tenth and 1 s more)")
                }
            }
        }
        let value = await job(slot)
        deadline?.cancel()
        release(id, slot: slot, seconds: (ContinuousClock.now - started) / .seconds(1))
        return value
    }

    /// Takes a waiting ticket out of the queue (its `run` throws `CancellationError`); a
    /// running or finished one is left alone.
    func withdraw(_ ticket: Ticket) {
        let waiter = state.withLock { state -> Waiter? in
            guard let index = state.waiting.firstIndex(where: { $0.id == ticket.id }) else {
                if state.issued.contains(ticket.id) { state.withdrawn.insert(ticket.id) } // not queued yet
                return nil
            }
            let waiter = state.waiting.remove(at: index)
            onChange(Counts(running: state.running, queued: state.waiting.count))
            return waiter
        }
        waiter?.continuation.resume(throwing: CancellationError())
    }

    private func acquire(_ id: UInt64) async throws -> Int {
        enum Decision { case run(Int), wait, cancelled, refuse(Refusal) }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int, any Error>) in
                let decision: Decision = state.withLock { state in
                    state.issued.remove(id)
                    let withdrawn = state.withdrawn.remove(id) != nil
                    if state.shuttingDown { return .refuse(.shuttingDown) }
                    if Task.isCancelled || withdrawn { return .cancelled }
                    if state.running < parallelism, let slot = state.freeSlots.popLast() {
                        state.running += 1
                        onChange(Counts(running: state.running, queued: state.waiting.count))
                        return .run(slot)
                    }
                    if state.waiting.count < queueLimit {
                        state.waiting.append(Waiter(id: id, continuation: continuation))
                        onChange(Counts(running: state.running, queued: state.waiting.count))
                        return .wait
                    }
                    let ahead = Double(state.waiting.count + 1) / Double(parallelism)
                    return .refuse(.overloaded(retryAfter: max(1, Int((ahead * state.averageSeconds).rounded(.up)))))
                }
                switch decision {
                case .run(let slot): continuation.resume(returning: slot)
                case .wait: break
                case .cancelled: continuation.resume(throwing: CancellationError())
                case .refuse(let refusal):
                    continuation.resume(throwing: refusal)
                }
            }
        } onCancel: {
            let waiter = state.withLock { state -> Waiter? in
                guard let index = state.waiting.firstIndex(where: { $0.id == id }) else { return nil }
                let waiter = state.waiting.remove(at: index)
                onChange(Counts(running: state.running, queued: state.waiting.count))
                return waiter
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    private func release(_ id: UInt64, slot: Int, seconds: Double) {
        let next = state.withLock { state -> Waiter? in
            state.stops[id] = nil
            state.averageSeconds = 0.8 * state.averageSeconds + 0.2 * seconds
            defer { onChange(Counts(running: state.running, queued: state.waiting.count)) }
            if !state.waiting.isEmpty { return state.waiting.removeFirst() } // the slot passes on
            state.running -= 1
            state.freeSlots.append(slot)
            state.freeSlots.sort(by: >)
            return nil
        }
        next?.continuation.resume(returning: slot)
    }

    /// The job as it runs in `slot`: every process that names no CPUs pinned to the slot's.
    func pinned(_ document: JobDocument, slot: Int) -> JobDocument {
        guard let slotCPUs, slotCPUs.indices.contains(slot) else { return document }
        return document.pinning(slotCPUs[slot])
    }

    func pinned(_ spec: JobSpec, slot: Int) -> JobSpec {
        guard let slotCPUs, slotCPUs.indices.contains(slot) else { return spec }
        return spec.pinning(slotCPUs[slot])
    }

    /// From now on refuse new jobs, and refuse every waiting one.
    func beginShutdown() {
        let waiting = state.withLock { state -> [Waiter] in
            state.shuttingDown = true
            defer { state.waiting = [] }
            onChange(Counts(running: state.running, queued: 0))
            return state.waiting
        }
        for waiter in waiting { waiter.continuation.resume(throwing: Refusal.shuttingDown) }
    }

    /// Cancels every running job (each ends with status `cancelled`).
    func cancelRunning() {
        let stops = state.withLock { Array($0.stops.values) }
        for stop in stops { stop.stop(reason: "stopped by the server: it was shutting down, and its grace period was over") }
    }

    /// Shutdown: refuse what waits, let what runs go on for `grace`, then cancel it; returns
    /// once nothing runs and every working directory is removed.
    func drain(grace: Duration) async {
        beginShutdown()
        let deadline = ContinuousClock.now + grace
        while counts.running > 0 && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        while counts.running > 0 {
            cancelRunning()
            try? await Task.sleep(for: .milliseconds(20))
        }
        await removals.drain()
    }
}
