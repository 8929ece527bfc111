import Corral
import CorralQueue
import Foundation
import Logging
import Synchronization

/// What the file store holds for the jobs of the durable queue: a job that names stored files
/// (`files[].fileId`) holds them from the moment it is accepted until it is done, cancelled
/// or removed, so no upload evicts them and `DELETE /v1/files/{id}` is refused (409) while it
/// waits. The files are held before the job is written to the queue (an unknown id is a 400
/// then, nothing queued); a run takes a lease of its own as well.
///
/// It is rebuilt at start from the queue's unfinished jobs (the holds of a process do not
/// outlive it, the queue does), and kept true by ``reconcile(_:)``, which drops the holds of
/// jobs that finished elsewhere: with a shared queue another worker may run a job this server
/// accepted, and only the queue knows when it is done.
final class QueuedFileHolds: Sendable {
    let store: FileStore
    private struct State {
        var leases: [String: FileLease] = [:]
        /// Enqueues in flight (``attaching(_:enqueue:)``), and the jobs released meanwhile
        /// that held nothing yet.
        var enqueuing = 0
        var releasedEarly: Set<String> = []
    }
    private let state = Mutex(State())

    init(store: FileStore) {
        self.store = store
    }

    /// Why a spec's files cannot be held: `index` is the position in `files`.
    struct Missing: Error {
        let index: Int
        let message: String
    }

    /// Holds the stored files of `spec` (nil when it names none); throws for the first that
    /// is not in the store, holding nothing.
    func hold(_ spec: JobSpec) throws(Missing) -> FileLease? {
        let files = spec.storedFiles
        guard !files.isEmpty else { return nil }
        do {
            return try store.acquire(files.map(\.id))
        } catch {
            let index = files.first { store.size(of: $0.id) == nil }?.index ?? files[0].index
            throw Missing(index: index, message: error.message)
        }
    }

    /// Runs `enqueue` (which queues the jobs whose holds are `held`, in order, and answers
    /// their ids); the holds then belong to those jobs. A job may be claimed, run and done
    /// before `enqueue` even returns: its ``release(_:)`` then comes first, and is kept until
    /// here, so that its hold is dropped rather than kept forever.
    func attaching(_ held: [FileLease?], enqueue: () async throws -> [String]) async throws -> [String] {
        state.withLock { $0.enqueuing += 1 }
        defer {
            state.withLock { state in
                state.enqueuing -= 1
                if state.enqueuing == 0 { state.releasedEarly.removeAll() }
            }
        }
        let ids = try await enqueue()
        let early = state.withLock { state in
            var early: [FileLease] = []
            for (lease, job) in zip(held, ids) {
                guard let lease else { continue }
                if state.releasedEarly.remove(job) != nil { early.append(lease) } else { state.leases[job] = lease }
            }
            return early
        }
        for lease in early { lease.release() }
        return ids
    }

    /// The job is done, cancelled or gone: its files may be evicted again.
    func release(_ job: String) {
        let lease = state.withLock { state in
            let lease = state.leases.removeValue(forKey: job)
            if lease == nil && state.enqueuing > 0 { state.releasedEarly.insert(job) }
            return lease
        }
        lease?.release()
    }

    /// The jobs holding files now.
    var jobs: [String] {
        state.withLock { Array($0.leases.keys) }
    }

    /// After a restart: holds again the files of every queued or running job. A file already
    /// gone is skipped (its job fails when it runs, naming it).
    func restore(from queue: any JobQueue, logger: Logger) async {
        let unfinished: [UnfinishedJob]
        do {
            unfinished = try await queue.unfinished()
        } catch {
            logger.error("cannot read the queued jobs to hold their stored files", metadata: ["error": .string(error.description)])
            return
        }
        var missing = 0
        for job in unfinished {
            // Parsed as it was when it was accepted; one that no longer parses fails when it runs.
            guard let spec = try? JobSpec.parse(job.spec, isolationRequired: false) else { continue }
            let ids = spec.storedFiles.map(\.id).filter { store.size(of: $0) != nil }
            missing += spec.storedFiles.count - ids.count
            guard !ids.isEmpty, let lease = try? store.acquire(ids) else { continue }
            state.withLock { $0.leases[job.id] = lease }
        }
        if missing > 0 {
            logger.warning("queued jobs name stored files that are no longer in the store", metadata: ["files": "\(missing)"])
        }
    }

    /// Drops the holds of jobs that are no longer queued or running (finished by another
    /// worker of a shared queue, or removed).
    func reconcile(_ queue: any JobQueue) async throws(QueueError) {
        let held = jobs
        guard !held.isEmpty else { return }
        let states = try await queue.states(held)
        for job in held {
            let state = states[job]
            if state != .queued && state != .running { release(job) }
        }
    }

    /// ``reconcile(_:)`` every `interval` until `stopped` says so.
    func run(_ queue: any JobQueue, every interval: Duration, logger: Logger, stopped: @Sendable () -> Bool) async {
        while !stopped() && !Task.isCancelled {
            let next = ContinuousClock.now + interval
            while ContinuousClock.now < next && !stopped() && !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(100))
            }
            do {
                try await reconcile(queue)
            } catch {
                logger.warning("cannot read the states of queued jobs holding stored files", metadata: ["error": .string(error.description)])
            }
        }
    }
}
