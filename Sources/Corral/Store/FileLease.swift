import Synchronization

/// Files of the ``FileStore`` held for a job (``FileStore/acquire(_:)``): none of them is
/// evicted or removed until ``release()``, which a job runner calls when the job ends and a
/// queue when it drops a job. Releasing twice is harmless; a lease dropped unreleased
/// releases itself.
public final class FileLease: Sendable {
    public let ids: [FileId]
    private let store: FileStore
    private let released = Mutex(false)

    init(store: FileStore, ids: [FileId]) {
        self.store = store
        self.ids = ids
    }

    public func release() {
        let first = released.withLock { done in
            defer { done = true }
            return !done
        }
        if first { store.release(ids) }
    }

    deinit {
        release()
    }
}
