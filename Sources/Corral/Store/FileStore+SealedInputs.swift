import CCorral
#if canImport(Glibc)
import Glibc
#endif

extension FileStore {
    /// A read-only descriptor of a sealed memfd holding the stored file `id` (the caller, or
    /// the run it is given to, closes it): a new open of the store's cached copy
    /// (``SealedInputCache``), made on the first use. Refused for an id the store does not
    /// have, even when a copy is still cached. Counts as a use for the eviction order.
    /// Blocking: off the cooperative pool.
    public func openSealedInput(_ id: FileId) throws(FileStoreError) -> Int32 {
        let known = index.withLock { (index) -> Bool in
            guard index.entries[id] != nil else { return false }
            index.touch(id)
            return true
        }
        guard known else { throw FileStoreError(.notFound, "no file \(id) in the store") }
        if let fd = try sealedInputs.reopen(id) {
            markUsed(id)
            return fd
        }
        let (source, size) = try open(id)
        defer { _ = close(source) }
        let copy = corral_sealed_memfd_copy("corral-stored", source, size)
        guard copy >= 0 else { throw FileStoreError(.system, "file store: a sealed copy of \(id): \(SetupFailure.describe(errno))") }
        var info = stat()
        guard fchmod(copy, 0o444) == 0, fstat(copy, &info) == 0, UInt64(info.st_size) == size else {
            let error = errno
            _ = close(copy)
            throw FileStoreError(.system, "file store: a sealed copy of \(id): \(SetupFailure.describe(error))")
        }
        // Kept only while the store still has the file (an eviction meanwhile dropped nothing
        // yet to be kept): checked and inserted under the store's lock.
        return try index.withLock { (index) throws(FileStoreError) -> Int32 in
            guard index.entries[id] != nil else { return copy }
            return try sealedInputs.insert(id, descriptor: copy, size: size)
        }
    }

    /// How many sealed copies the store keeps, and their bytes.
    public var sealedCopies: (files: Int, bytes: UInt64) {
        let statistics = sealedInputs.statistics
        return (statistics.entries, statistics.bytes)
    }
}
