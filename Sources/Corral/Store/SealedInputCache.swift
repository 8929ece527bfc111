import CCorral
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Sealed memfd copies of stored files, for the tests whose stdin is a stored file and whose
/// program must not get the store's own file (one that is not isolated, or runs as root):
/// copied once, then handed to each run as a new read-only open of the same sealed memory.
///
/// Why it is safe to share: a copy is sealed against any change of its bytes or size
/// (`F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL`, checked again at every
/// hand-out), mode 0444 and Corral's: a program given it can read it, and through
/// `/proc/self/fd/0` reopen it, but never write, truncate, grow or map it writable, and a
/// program of another user cannot chmod it. A copy whose mode, owner, size or seals are not
/// what was made (a program of Corral's own user chmodded it) is dropped and made again.
/// Each run gets a fresh open file description (reopened through `/proc/self/fd/N`, never a
/// duplicate), so no two runs share an offset. Keyed by file id, the SHA-256 of the content:
/// an entry can only ever hold that id's bytes. The ``FileStore`` drops an entry when it
/// evicts or removes the file, and serves one only for an id it still has.
///
/// Bounded: at most ``maxBytes`` of copies (least recently used go first) and
/// ``maxEntries`` descriptors (an eighth of the process's soft limit of open files, at most
/// 1024: a client that stores many distinct inputs must not take the descriptors a server
/// needs for its connections and runs); a file larger than the bound is copied for its run
/// alone and not kept. The memory is Corral's (charged to its cgroup, never to a run's) and
/// freed when the entries are dropped: at eviction, and when the store goes away.
final class SealedInputCache: Sendable {
    /// The most bytes of copies kept by default.
    static let defaultMaxBytes: UInt64 = 256 << 20
    /// The most descriptors kept: an eighth of the soft limit of open files when the cache is
    /// made, at least 8 and at most 1024 (with the usual soft limit of 1024: 128).
    static var entriesForFileLimit: Int {
        var files = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &files) == 0 else { return 8 }
        let soft = files.rlim_cur == rlim_t.max ? UInt64(1 << 20) : UInt64(files.rlim_cur)
        return Int(max(8, min(1024, soft / 8)))
    }

    let maxBytes: UInt64
    let maxEntries: Int
    private let state = Mutex(State())

    struct Entry {
        var descriptor: Int32
        var size: UInt64
        var lastUse: UInt64
    }

    struct State {
        var entries: [FileId: Entry] = [:]
        var bytes: UInt64 = 0
        var clock: UInt64 = 0

        mutating func drop(_ id: FileId) {
            guard let entry = entries.removeValue(forKey: id) else { return }
            bytes -= entry.size
            _ = Glibc.close(entry.descriptor)
        }
    }

    /// What it holds now (for tests and metrics).
    struct Statistics: Sendable, Hashable {
        var entries: Int
        var bytes: UInt64
    }

    init(maxBytes: UInt64) {
        self.maxBytes = maxBytes
        maxEntries = Self.entriesForFileLimit
    }

    deinit {
        state.withLock { state in
            for entry in state.entries.values { _ = Glibc.close(entry.descriptor) }
            state.entries = [:]
            state.bytes = 0
        }
    }

    var statistics: Statistics {
        state.withLock { Statistics(entries: $0.entries.count, bytes: $0.bytes) }
    }

    /// A new read-only open of the cached copy of `id`, or nil when there is none (or the one
    /// there was no longer what was made: it is dropped). Errors other than a miss throw.
    func reopen(_ id: FileId) throws(FileStoreError) -> Int32? {
        try state.withLock { (state) throws(FileStoreError) -> Int32? in
            guard let entry = state.entries[id] else { return nil }
            guard Self.intact(entry.descriptor, size: entry.size) else {
                state.drop(id)
                return nil
            }
            let fd = corral_reopen_read_only(entry.descriptor)
            guard fd >= 0 else { throw FileStoreError(.system, "file store: reopen the sealed copy of \(id): \(SetupFailure.describe(errno))") }
            state.clock += 1
            state.entries[id]?.lastUse = state.clock
            return fd
        }
    }

    /// Keeps `descriptor` (a sealed copy of `id`, taken over) and returns a new read-only open
    /// of it for the caller's run. Another thread's copy of the same id, made meanwhile, wins
    /// (this one is closed). A copy larger than the bound is not kept: it is returned as it is.
    func insert(_ id: FileId, descriptor: Int32, size: UInt64) throws(FileStoreError) -> Int32 {
        guard size <= maxBytes else { return descriptor }
        return try state.withLock { (state) throws(FileStoreError) -> Int32 in
            if state.entries[id] == nil {
                // Least recently used first, until it fits.
                while state.bytes > maxBytes - size || state.entries.count >= maxEntries,
                      let oldest = state.entries.min(by: { $0.value.lastUse < $1.value.lastUse })?.key {
                    state.drop(oldest)
                }
                state.clock += 1
                state.entries[id] = Entry(descriptor: descriptor, size: size, lastUse: state.clock)
                state.bytes += size
            } else {
                _ = Glibc.close(descriptor)
            }
            let kept = state.entries[id]!.descriptor
            let fd = corral_reopen_read_only(kept)
            guard fd >= 0 else { throw FileStoreError(.system, "file store: reopen the sealed copy of \(id): \(SetupFailure.describe(errno))") }
            return fd
        }
    }

    /// Drops the copy of a file the store no longer has.
    func remove(_ id: FileId) {
        state.withLock { $0.drop(id) }
    }

    /// Sealed, Corral's, 0444 and of the size it was made with.
    static func intact(_ fd: Int32, size: UInt64) -> Bool {
        var info = stat()
        return fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG && info.st_mode & 0o7777 == 0o444
            && info.st_uid == geteuid() && UInt64(info.st_size) == size && corral_memfd_fully_sealed(fd) == 1
    }
}
