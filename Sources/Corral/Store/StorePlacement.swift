import CCorral
#if canImport(Glibc)
import Glibc
#endif

/// A file by device and inode: the stored files a job's layout linked in, which a stream
/// file may then be opened from although they have other names.
struct FileIdentity: Sendable, Hashable {
    let device: UInt64
    let inode: UInt64

    init(_ info: stat) {
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
    }
}

/// Stored files into a job's directories and back. A placed file is Corral's, read-only
/// (0444, or 0555 when executable), so the program can read (and run) it but never write
/// it: either a hard link to the store's own read-only file (when Corral is root, the
/// program's user is not, and the mode matches: nothing to copy, so a large input costs
/// the same as a small one) or a copy. A link names only that one file: the program gets
/// no path into the store (which is 0700 and never mounted in a sandbox).
extension DirectoryHandle {
    /// Places `file` (a `.stored` one) beneath this directory; its parent directories must
    /// have been made. `link`: a hard link is allowed for this process. Returns the placed
    /// file's identity.
    func placeStored(_ file: FileSpec, from store: FileStore, link: Bool, limit: UInt64?) throws(CorralError) -> FileIdentity {
        guard case .stored(let id) = file.source else { throw CorralError(.system, "files: \(file.path): not a stored file") }
        let (parent, name) = try parent(of: file.path)
        defer { parent.close() }
        let (source, _) = try Self.storeOpen(store, id, file.path)
        defer { _ = Glibc.close(source) }
        // The store's files are 0444: a link serves only a non-executable placement.
        if link && !file.executable {
            if corral_link_open_file(source, parent.descriptor, name) == 0 {
                return try Self.identity(parent.descriptor, name, file.path)
            }
            if errno == EEXIST { throw CorralError(.invalidJob, "files: create \(file.path): already given") }
            // EXDEV (another file system), EMLINK: a copy does.
        }
        let target = corral_openat_beneath(parent.descriptor, name, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard target >= 0 else {
            throw CorralError(errno == EEXIST ? .invalidJob : .system,
                              "files: create \(file.path): \(errno == EEXIST ? "already given" : DirectoryHandle.reason(errno))")
        }
        defer { _ = Glibc.close(target) }
        if corral_copy_whole_file(source, target) < 0 {
            let error = errno
            if let limit, error == ENOSPC {
                throw CorralError(.invalidJob, "files: \(file.path) does not fit in the job's working directory (limit \(LimitValue.describe(bytes: limit)))")
            }
            throw CorralError(.system, "files: copy \(id) to \(file.path): \(SetupFailure.describe(error))")
        }
        guard fchmod(target, file.executable ? 0o555 : 0o444) == 0 else {
            throw CorralError(.system, "files: chmod \(file.path): \(SetupFailure.describe(errno))")
        }
        var info = stat()
        guard fstat(target, &info) == 0 else { throw CorralError(.system, "files: stat \(file.path): \(SetupFailure.describe(errno))") }
        return FileIdentity(info)
    }

    private static func storeOpen(_ store: FileStore, _ id: FileId, _ path: SpecPath) throws(CorralError) -> (Int32, UInt64) {
        do {
            return try store.open(id)
        } catch {
            throw CorralError(error.kind == .notFound ? .invalidJob : .system, "files: \(path): \(error.message)")
        }
    }

    private static func identity(_ parent: Int32, _ name: String, _ path: SpecPath) throws(CorralError) -> FileIdentity {
        var info = stat()
        guard fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) == 0 else {
            throw CorralError(.system, "files: stat \(path): \(SetupFailure.describe(errno))")
        }
        return FileIdentity(info)
    }

    /// Collects a file into the store (`"store": true`): never through a link, a regular file
    /// with no other names, at most `spec.max` bytes (a larger one is not stored).
    func collectToStore(_ spec: CollectSpec, store: FileStore, stop: RunStop? = nil) -> CollectedFile {
        func failed(_ reason: String) -> CollectedFile { CollectedFile(path: spec.path.description, content: nil, error: reason) }
        let fd = openBeneath(spec.path, O_RDONLY | O_NONBLOCK)
        guard fd >= 0 else { return failed(Self.reason(errno)) }
        defer { _ = Glibc.close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return failed(SetupFailure.describe(errno)) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { return failed("not a regular file") }
        guard info.st_nlink == 1 else { return failed("a file with other names (a hard link): not read") }
        let limit = min(spec.max, store.maxFileBytes)
        guard UInt64(info.st_size) <= limit else {
            return failed("\(info.st_size) bytes, over the \(limit) bytes a stored file may have (collect max, --file-store-max-file): not stored")
        }
        let executable = info.st_mode & 0o111 != 0
        do throws(FileStoreError) {
            let upload = try store.upload()
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count >= 0 else { upload.abandon(); return failed("read: \(SetupFailure.describe(errno))") }
                if count == 0 { break }
                if let stop, stop.isStopped { upload.abandon(); return failed(CollectedFile.notCollected(stop)) }
                // The program may still be growing it (a process it left behind).
                guard upload.size + UInt64(count) <= limit else { upload.abandon(); return failed("grew past \(limit) bytes while read: not stored") }
                try upload.write(buffer, 0..<count)
            }
            let stored = try upload.commit()
            return CollectedFile(path: spec.path.description, content: nil, error: nil, fileId: stored.id, size: stored.size, executable: executable)
        } catch {
            return failed("not stored: \(error.message)")
        }
    }
}
