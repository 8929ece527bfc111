import CCorral
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A content-addressed store of files on disk: a file's id is the SHA-256 of its bytes
/// (``FileId``), so the same bytes stored twice, even at once, are one file under one id.
/// Bounded (``maxBytes``): an upload makes room by evicting the least recently used files
/// that no ``FileLease`` holds, and is refused when even that would not make room, so the
/// store is never above its bound. It survives a restart: the files are the index.
///
/// On disk, beneath `directory` (0700, its owner's): `data/ID` (each file, read-only) and
/// `tmp/` (uploads in flight, renamed into `data/` once complete and synced, so nothing
/// partial is ever seen under an id). Every open is beneath the directory's descriptor
/// (openat2 `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`) by an id that
/// was checked to be 64 hex digits: an id names only store content. Blocking calls: use
/// them off the cooperative pool.
public final class FileStore: Sendable {
    public let directory: String
    /// The most bytes the store holds, uploads in flight included.
    public let maxBytes: UInt64
    /// The largest single file.
    public let maxFileBytes: UInt64
    /// What the store found at start that an operator should know (files it discarded).
    public let notices: [String]
    let root: Int32
    let data: Int32
    let temporary: Int32
    let index: Mutex<StoreIndex>
    /// Sealed copies of stored files for the stdin of programs that must not get the store's
    /// own file (``SealedInputCache``); an entry goes when its file leaves the store.
    let sealedInputs: SealedInputCache
    private let onChange: @Sendable (Statistics) -> Void

    /// What the store holds now (its metrics).
    public struct Statistics: Sendable, Hashable {
        public var files: Int
        public var bytes: UInt64
        /// Bytes reserved by uploads still streaming in.
        public var reservedBytes: UInt64
        public var evictions: UInt64
    }

    /// A stored file: its id and size; `created` is false when the bytes were there already.
    public struct StoredFile: Sendable, Hashable {
        public var id: FileId
        public var size: UInt64
        public var created: Bool
    }

    public static let defaultMaxBytes: UInt64 = 1 << 30
    public static let defaultMaxFileBytes: UInt64 = 256 << 20
    public static let defaultSealedCopyBytes: UInt64 = SealedInputCache.defaultMaxBytes

    /// `/var/lib/corral/files` for root; else `$XDG_STATE_HOME/corral/files`, or
    /// `~/.local/state/corral/files`.
    public static var defaultDirectory: String {
        if geteuid() == 0 { return "/var/lib/corral/files" }
        if let state = getenv("XDG_STATE_HOME").map({ String(cString: $0) }), state.hasPrefix("/") {
            return state + "/corral/files"
        }
        let home = getenv("HOME").map { String(cString: $0) } ?? "/tmp"
        return home + "/.local/state/corral/files"
    }

    /// Opens (creating it where missing) the store at `directory`, removes what uploads a
    /// previous process left half done, and indexes the files there (least recently used
    /// first, by modification time). Anything in `data/` that is not a regular file named
    /// by an id is removed, never followed.
    /// `sealedCopyBytes`: the most memory kept in sealed copies of stored test inputs
    /// (``SealedInputCache``, default 256 MiB, at most `maxBytes`; 0 keeps none).
    public init(directory: String = FileStore.defaultDirectory, maxBytes: UInt64 = FileStore.defaultMaxBytes,
                maxFileBytes: UInt64? = nil, sealedCopyBytes: UInt64 = FileStore.defaultSealedCopyBytes,
                onChange: @escaping @Sendable (Statistics) -> Void = { _ in }) throws(CorralError) {
        guard maxBytes > 0 else { throw CorralError(.invalidJob, "file store: the size bound must be greater than zero") }
        self.directory = directory
        self.maxBytes = maxBytes
        self.maxFileBytes = min(maxFileBytes ?? Self.defaultMaxFileBytes, maxBytes)
        self.onChange = onChange
        sealedInputs = SealedInputCache(maxBytes: min(sealedCopyBytes, maxBytes))
        let opened = try StoreDirectory.open(directory)
        root = opened.root
        data = opened.data
        temporary = opened.temporary
        var index = StoreIndex(maxBytes: maxBytes)
        for file in opened.files { index.load(file.id, size: file.size) }
        var notices = opened.notices
        // A bound lowered since the last start: the oldest go first.
        if let victims = index.reserve(0) {
            for id in victims { _ = unlinkat(data, id.hex, 0) }
            if !victims.isEmpty { notices.append("file store: \(victims.count) files evicted to fit the bound of \(maxBytes) bytes") }
        }
        self.notices = notices
        self.index = Mutex(index)
        onChange(statistics)
    }

    deinit {
        _ = close(data)
        _ = close(temporary)
        _ = close(root)
    }

    public var statistics: Statistics {
        index.withLock { Statistics(files: $0.entries.count, bytes: $0.storedBytes, reservedBytes: $0.reservedBytes, evictions: $0.evictions) }
    }

    /// The size of a stored file, or nil.
    public func size(of id: FileId) -> UInt64? {
        index.withLock { $0.entries[id]?.size }
    }

    /// Stores `bytes` (a convenience over ``upload()``).
    public func put(_ bytes: [UInt8]) throws(FileStoreError) -> StoredFile {
        let upload = try self.upload()
        try upload.write(bytes)
        return try upload.commit()
    }

    /// A new upload: write its bytes as they come, then commit it.
    public func upload() throws(FileStoreError) -> StoreUpload {
        try StoreUpload(store: self)
    }

    /// A read-only descriptor of a stored file (the caller closes it) and its size; counts
    /// as a use for the eviction order.
    public func open(_ id: FileId) throws(FileStoreError) -> (descriptor: Int32, size: UInt64) {
        // Opened under the lock: an eviction cannot unlink it in between.
        let (fd, size) = try index.withLock { (index) throws(FileStoreError) -> (Int32, UInt64) in
            guard let entry = index.entries[id] else { throw FileStoreError(.notFound, "no file \(id) in the store") }
            let fd = corral_openat_beneath(data, id.hex, O_RDONLY, 0)
            guard fd >= 0 else { throw FileStoreError(.system, "file store: open \(id): \(SetupFailure.describe(errno))") }
            index.touch(id)
            return (fd, entry.size)
        }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, UInt64(info.st_size) == size else {
            _ = close(fd)
            throw FileStoreError(.system, "file store: \(id) is not the file the store wrote")
        }
        markUsed(id)
        return (fd, size)
    }

    /// Removes a file; refused while a lease (a queued or running job) holds it.
    public func remove(_ id: FileId) throws(FileStoreError) {
        try index.withLock { (index) throws(FileStoreError) in
            guard let entry = index.entries[id] else { throw FileStoreError(.notFound, "no file \(id) in the store") }
            guard index.remove(id) else {
                throw FileStoreError(.inUse, "file \(id) is in use by \(entry.references) queued or running jobs")
            }
            _ = unlinkat(data, id.hex, 0)
            sealedInputs.remove(id)
        }
        onChange(statistics)
    }

    /// Holds `ids` (duplicates allowed) so that none is evicted or removed until the lease is
    /// released; a job holds one while it is queued and while it runs. Throws for the first
    /// unknown id, holding nothing.
    public func acquire(_ ids: [FileId]) throws(FileStoreError) -> FileLease {
        if let missing = index.withLock({ $0.acquire(ids) }) {
            throw FileStoreError(.notFound, "no file \(missing) in the store")
        }
        return FileLease(store: self, ids: ids)
    }

    func release(_ ids: [FileId]) {
        index.withLock { $0.release(ids) }
    }

    /// Room for `bytes` more, evicting what it must (unlinked under the lock, so the disk and
    /// the index never disagree); throws when it cannot be had.
    func reserve(_ bytes: UInt64) throws(FileStoreError) {
        let evicted = try index.withLock { (index) throws(FileStoreError) -> Int in
            guard let victims = index.reserve(bytes) else {
                throw FileStoreError(.full, "the file store is full: \(index.storedBytes + index.reservedBytes) of its \(maxBytes) bytes are taken by files that queued or running jobs use and by uploads in flight (--file-store-max)")
            }
            for id in victims {
                _ = unlinkat(data, id.hex, 0)
                sealedInputs.remove(id)
            }
            return victims.count
        }
        if evicted > 0 { onChange(statistics) }
    }

    func releaseReservation(_ bytes: UInt64) {
        index.withLock { $0.release(reserved: bytes) }
    }

    /// Publishes a complete, synced upload under its id (or drops it when the id is there).
    func commit(temporaryName: String, id: FileId, size: UInt64, reserved: UInt64) throws(FileStoreError) -> StoredFile {
        let created = try index.withLock { (index) throws(FileStoreError) -> Bool in
            if index.entries[id] != nil {
                index.release(reserved: reserved)
                index.touch(id)
                _ = unlinkat(temporary, temporaryName, 0)
                return false
            }
            guard renameat(temporary, temporaryName, data, id.hex) == 0 else {
                let error = errno
                index.release(reserved: reserved)
                _ = unlinkat(temporary, temporaryName, 0)
                throw FileStoreError(.system, "file store: rename into place: \(SetupFailure.describe(error))")
            }
            index.commit(id, size: size, reserved: reserved)
            return true
        }
        if created { _ = fsync(data) } else { markUsed(id) }
        onChange(statistics)
        return StoredFile(id: id, size: size, created: created)
    }

    /// The modification time keeps the order of use across restarts.
    func markUsed(_ id: FileId) {
        _ = utimensat(data, id.hex, nil, AT_SYMLINK_NOFOLLOW)
    }
}

/// Why the store refused: the HTTP routes answer by its kind.
public struct FileStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        case notFound = "not-found"
        /// Over the per-file cap.
        case tooLarge = "too-large"
        /// No room even after evicting every file no job uses.
        case full
        /// A lease holds the file (DELETE).
        case inUse = "in-use"
        case system
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
