/// What the ``FileStore`` knows of its files, kept in memory under its lock and mirrored on
/// disk: each file's size, when it was last used (a sequence number, rebuilt from the
/// files' modification times at start) and how many leases hold it; the bytes stored and
/// the bytes reserved by uploads still streaming in. Pure bookkeeping: the store does the
/// file system calls its answers ask for.
struct StoreIndex: Sendable {
    struct Entry: Sendable {
        var size: UInt64
        var lastUse: UInt64
        var references: Int
    }

    let maxBytes: UInt64
    private(set) var entries: [FileId: Entry] = [:]
    private(set) var storedBytes: UInt64 = 0
    private(set) var reservedBytes: UInt64 = 0
    private(set) var evictions: UInt64 = 0
    private var clock: UInt64 = 0

    init(maxBytes: UInt64) {
        self.maxBytes = maxBytes
    }

    /// A file found on disk at start, in order of last use (oldest first).
    mutating func load(_ id: FileId, size: UInt64) {
        clock += 1
        entries[id] = Entry(size: size, lastUse: clock, references: 0)
        storedBytes += size
    }

    mutating func touch(_ id: FileId) {
        clock += 1
        entries[id]?.lastUse = clock
    }

    /// Makes room for `bytes` more by evicting the least recently used files no lease holds;
    /// the evicted ids (for the caller to unlink), or nil (and nothing evicted) when even
    /// evicting every unreferenced file would not make room.
    mutating func reserve(_ bytes: UInt64) -> [FileId]? {
        let used = storedBytes + reservedBytes
        if bytes <= maxBytes && used <= maxBytes - bytes {
            reservedBytes += bytes
            return []
        }
        let evictable = entries.values.reduce(UInt64(0)) { $0 + ($1.references == 0 ? $1.size : 0) }
        guard bytes <= maxBytes, used - evictable <= maxBytes - bytes else { return nil }
        var victims: [FileId] = []
        let order = entries.filter { $0.value.references == 0 }.sorted { $0.value.lastUse < $1.value.lastUse }
        for (id, entry) in order where storedBytes + reservedBytes > maxBytes - bytes {
            entries[id] = nil
            storedBytes -= entry.size
            evictions += 1
            victims.append(id)
        }
        reservedBytes += bytes
        return victims
    }

    mutating func release(reserved bytes: UInt64) {
        reservedBytes -= min(bytes, reservedBytes)
    }

    /// An upload's reservation becomes a stored file.
    mutating func commit(_ id: FileId, size: UInt64, reserved: UInt64) {
        release(reserved: reserved)
        clock += 1
        entries[id] = Entry(size: size, lastUse: clock, references: 0)
        storedBytes += size
    }

    /// Takes a file out (DELETE); false when a lease holds it.
    mutating func remove(_ id: FileId) -> Bool {
        guard let entry = entries[id], entry.references == 0 else { return false }
        entries[id] = nil
        storedBytes -= entry.size
        return true
    }

    /// One more lease on each id; the first unknown id (and nothing taken) if any.
    mutating func acquire(_ ids: [FileId]) -> FileId? {
        if let missing = ids.first(where: { entries[$0] == nil }) { return missing }
        for id in ids {
            clock += 1
            entries[id]!.references += 1
            entries[id]!.lastUse = clock
        }
        return nil
    }

    mutating func release(_ ids: [FileId]) {
        for id in ids where entries[id] != nil {
            entries[id]!.references = max(0, entries[id]!.references - 1)
        }
    }
}
