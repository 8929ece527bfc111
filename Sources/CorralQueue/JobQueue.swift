import Foundation

/// Where a job is in its life: waiting, claimed by a worker, finished (its report written), or
/// cancelled before it finished.
public enum JobState: String, Sendable, CaseIterable, Codable {
    case queued, running, done, cancelled
}

/// A job as the queue keeps it: the spec as it was sent (checked at enqueue; a worker admits
/// it again under its own rules before it runs it) and, once done, its report.
public struct JobRecord: Sendable, Equatable {
    public let id: String
    public let state: JobState
    /// The job spec's JSON, as sent.
    public let spec: Data
    /// The report's JSON once `done`; nil before, and for a cancelled job.
    public let report: Data?
    /// How many times a worker claimed it (more than one: a worker lost its lease).
    public let attempts: Int
    public let callback: String?
}

/// A claim on a running job, held by one worker: only the holder of the current token may
/// extend the lease, complete the job or give it back. A job whose lease ran out is claimed
/// again with a new token, so an old holder's report is discarded.
public struct Lease: Sendable, Hashable {
    public let id: String
    public let token: String
    public init(id: String, token: String) {
        self.id = id
        self.token = token
    }
}

/// A job a worker claimed.
public struct ClaimedJob: Sendable {
    public let lease: Lease
    public let spec: Data
    public let attempt: Int
    public let callback: String?
    /// Whether the job was running under another worker's lease that ran out (that worker
    /// died, hung or lost its connection): it runs again here.
    public let tookOverExpiredLease: Bool
}

/// What ``JobQueue/cancel(_:)`` did.
public enum CancelOutcome: Sendable, Equatable {
    /// The job was waiting; no worker will take it.
    case cancelledQueued
    /// The job was running: its worker learns it at its next heartbeat (or sooner when the
    /// caller stops it itself) and its report is discarded.
    case cancelledRunning
    /// The job had finished or been cancelled already: nothing changed.
    case alreadyFinished(JobState)
    case notFound
}

/// A job not finished yet (queued or running), as ``JobQueue/unfinished()`` lists it.
public struct UnfinishedJob: Sendable, Equatable {
    public let id: String
    public let spec: Data
    public init(id: String, spec: Data) {
        self.id = id
        self.spec = spec
    }
}

/// A new job: its spec, and where to POST its report when it is done.
public struct NewJob: Sendable {
    public let spec: Data
    public let callback: String?
    public init(spec: Data, callback: String? = nil) {
        self.spec = spec
        self.callback = callback
    }
}

/// What ``JobQueue/complete(_:report:thenClaimFor:lease:)`` did: whether the report was
/// written (false: the lease was no longer held, the report discarded) and the next job
/// claimed, if one was asked for and there was one.
public struct Completion: Sendable {
    public let completed: Bool
    public let next: ClaimedJob?
    public init(completed: Bool, next: ClaimedJob?) {
        self.completed = completed
        self.next = next
    }
}

extension JobQueue {
    /// Two steps, one after the other (an engine that can do both at once overrides it).
    public func complete(_ lease: Lease, report: Data, thenClaimFor worker: String?, lease next: Duration) async throws(QueueError) -> Completion {
        let completed = try await complete(lease, report: report)
        guard let worker else { return Completion(completed: completed, next: nil) }
        return Completion(completed: completed, next: try await claim(worker: worker, lease: next))
    }
}

/// A failure of the queue's engine, with a message fit for an operator (never the
/// connection string).
public struct QueueError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A durable queue of jobs shared by the API servers that accept them and the workers that
/// run them. Every call is one atomic step of the engine, so any number of servers and
/// workers may use one queue at once.
public protocol JobQueue: Sendable {
    /// Adds jobs (all or none), queued in this order; their ids.
    func enqueue(_ jobs: [NewJob]) async throws(QueueError) -> [String]
    /// The oldest queued job, or one whose lease ran out, now `running` under a new lease of
    /// `lease` for `worker`; nil when there is none.
    func claim(worker: String, lease: Duration) async throws(QueueError) -> ClaimedJob?
    /// Extends a lease; false when it is no longer held (the job was cancelled, or its lease
    /// ran out and another worker took it): the holder must stop the run.
    func heartbeat(_ lease: Lease, extend: Duration) async throws(QueueError) -> Bool
    /// Writes the report and marks the job `done`, only while `lease` is still held; false
    /// when it is not (the report is discarded: the job was cancelled or is another's now).
    func complete(_ lease: Lease, report: Data) async throws(QueueError) -> Bool
    /// ``complete(_:report:)``, then ``claim(worker:lease:)`` of the next job for `worker`
    /// (nil: no claim), in one step where the engine allows it (PostgreSQL: one statement, one
    /// round trip and one commit for both), so a busy worker pays one trip per job.
    func complete(_ lease: Lease, report: Data, thenClaimFor worker: String?, lease next: Duration) async throws(QueueError) -> Completion
    /// Gives a running job back (queued again, at its place), as a worker that shuts down
    /// before finishing it does; false when the lease is no longer held.
    func release(_ lease: Lease) async throws(QueueError) -> Bool
    func cancel(_ id: String) async throws(QueueError) -> CancelOutcome
    func get(_ id: String) async throws(QueueError) -> JobRecord?
    /// Removes finished and cancelled jobs that finished more than `age` ago; how many.
    func expire(finishedBefore age: Duration) async throws(QueueError) -> Int
    /// Every queued or running job, oldest first (a server rebuilds from them, at start, what
    /// it holds for its queued jobs).
    func unfinished() async throws(QueueError) -> [UnfinishedJob]
    /// The states of the jobs `ids` that are still in the queue (an expired or unknown id is
    /// absent from the answer).
    func states(_ ids: [String]) async throws(QueueError) -> [String: JobState]
    /// Jobs in each state.
    func counts() async throws(QueueError) -> [JobState: Int]
    /// Signalled when a job may have been queued (see ``WorkSignal``).
    var workSignal: WorkSignal { get }
    /// Closes the connection; no call after it.
    func close() async
}

extension Duration {
    /// Whole milliseconds, at least 1 for a positive duration.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}

/// A fresh id for a job or a lease token: 128 random bits, lowercase UUID text.
func freshID() -> String { UUID().uuidString.lowercased() }
