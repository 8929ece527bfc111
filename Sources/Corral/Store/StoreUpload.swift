import CCorral
#if canImport(Glibc)
import Glibc
#endif

/// One file being stored: its bytes go to a temporary file beneath the store's `tmp/` as
/// they come (room reserved in the store first, so the bound holds while they stream in),
/// hashed on the way; ``commit()`` syncs it and renames it to its id. Dropped without a
/// commit, the temporary file is removed and the room given back. One task uses it.
public final class StoreUpload: @unchecked Sendable {
    private let store: FileStore
    private let name: String
    private var fd: Int32
    private var hasher = ContentHasher()
    public private(set) var size: UInt64 = 0
    private var reserved: UInt64 = 0
    private var finished = false

    init(store: FileStore) throws(FileStoreError) {
        self.store = store
        var made: Int32 = -1
        var name = ""
        for _ in 0..<8 {
            name = "upload-\(getpid())-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
            made = corral_openat_beneath(store.temporary, name, O_RDWR | O_CREAT | O_EXCL, 0o600)
            if made >= 0 || errno != EEXIST { break }
        }
        guard made >= 0 else { throw FileStoreError(.system, "file store: create a temporary file: \(SetupFailure.describe(errno))") }
        self.name = name
        fd = made
    }

    /// Appends bytes: over the per-file cap, or with no room in the store, it throws (and the
    /// upload is abandoned).
    public func write(_ bytes: UnsafeRawBufferPointer) throws(FileStoreError) {
        guard !finished else { throw FileStoreError(.system, "file store: write after the upload ended") }
        let count = UInt64(bytes.count)
        guard count > 0 else { return }
        guard size + count <= store.maxFileBytes else {
            abandon()
            throw FileStoreError(.tooLarge, "the file is over the file store's limit of \(store.maxFileBytes) bytes a file (--file-store-max-file)")
        }
        do {
            try store.reserve(count)
        } catch {
            abandon()
            throw error
        }
        reserved += count
        var written = 0
        while written < bytes.count {
            let result = Glibc.write(fd, bytes.baseAddress! + written, bytes.count - written)
            if result < 0 && errno == EINTR { continue }
            guard result > 0 else {
                let error = errno
                abandon()
                throw FileStoreError(error == ENOSPC ? .full : .system, "file store: write: \(SetupFailure.describe(error))")
            }
            written += result
        }
        hasher.update(bytes)
        size += count
    }

    /// Appends `bytes[range]` (all of them by default).
    public func write(_ bytes: [UInt8], _ range: Range<Int>? = nil) throws(FileStoreError) {
        let result = bytes.withUnsafeBytes { buffer -> Result<Void, FileStoreError> in
            do throws(FileStoreError) {
                try write(UnsafeRawBufferPointer(rebasing: buffer[range ?? 0..<buffer.count]))
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try result.get()
    }

    /// Syncs the file, makes it read-only and puts it under its id (or drops it when the same
    /// bytes are stored already).
    public func commit() throws(FileStoreError) -> FileStore.StoredFile {
        guard !finished else { throw FileStoreError(.system, "file store: the upload already ended") }
        guard fchmod(fd, 0o444) == 0, fsync(fd) == 0 else {
            let error = errno
            abandon()
            throw FileStoreError(.system, "file store: sync: \(SetupFailure.describe(error))")
        }
        finished = true
        _ = close(fd)
        fd = -1
        return try store.commit(temporaryName: name, id: hasher.finish(), size: size, reserved: reserved)
    }

    /// Removes the temporary file and gives back its room.
    public func abandon() {
        guard !finished else { return }
        finished = true
        _ = close(fd)
        fd = -1
        _ = unlinkat(store.temporary, name, 0)
        store.releaseReservation(reserved)
    }

    deinit {
        abandon()
    }
}
