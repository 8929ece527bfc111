#if canImport(Glibc)
import Glibc
#endif

/// The store's blocking calls from async code (the server's routes): each on a thread of
/// its own, never on the cooperative pool.
extension FileStore {
    /// ``upload()`` off the cooperative pool.
    public func startUpload() async throws(FileStoreError) -> StoreUpload {
        try await Blocking.run { () throws(FileStoreError) -> StoreUpload in try self.upload() }
    }

    /// A read-only descriptor and the size of a stored file (``open(_:)``).
    public func openReader(_ id: FileId) async throws(FileStoreError) -> StoredReader {
        let (fd, size) = try await Blocking.run { () throws(FileStoreError) -> (descriptor: Int32, size: UInt64) in try self.open(id) }
        return StoredReader(descriptor: fd, size: size)
    }

    /// ``remove(_:)`` off the cooperative pool.
    public func delete(_ id: FileId) async throws(FileStoreError) {
        try await Blocking.run { () throws(FileStoreError) in try self.remove(id) }
    }
}

extension StoreUpload {
    /// Appends a chunk (``write(_:)``) off the cooperative pool.
    public func append(_ bytes: [UInt8]) async throws(FileStoreError) {
        try await Blocking.run { () throws(FileStoreError) in
            try self.write(bytes)
        }
    }

    /// ``commit()`` off the cooperative pool.
    public func finish() async throws(FileStoreError) -> FileStore.StoredFile {
        try await Blocking.run { () throws(FileStoreError) -> FileStore.StoredFile in try self.commit() }
    }
}

/// A stored file opened for reading, chunk by chunk off the cooperative pool; close it.
public final class StoredReader: Sendable {
    public let size: UInt64
    private let descriptor: Int32

    init(descriptor: Int32, size: UInt64) {
        self.descriptor = descriptor
        self.size = size
    }

    /// The next chunk of at most `max` bytes; empty at the end.
    public func read(max: Int = 1 << 20) async throws(FileStoreError) -> [UInt8] {
        let fd = descriptor
        return try await Blocking.run { () throws(FileStoreError) -> [UInt8] in
            var buffer = [UInt8](repeating: 0, count: max)
            while true {
                let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count >= 0 else { throw FileStoreError(.system, "file store: read: \(SetupFailure.describe(errno))") }
                buffer.removeSubrange(count...)
                return buffer
            }
        }
    }

    public func close() {
        _ = Glibc.close(descriptor)
    }
}
