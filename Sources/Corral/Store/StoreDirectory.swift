import CCorral
#if canImport(Glibc)
import Glibc
#endif

/// The store's directory opened at start: made where missing (0700), refused unless it is
/// a directory of the user Corral runs as (a store another user could write to could be
/// made to serve anything), emptied of half-done uploads, and its files listed.
struct StoreDirectory {
    let root: Int32
    let data: Int32
    let temporary: Int32
    /// The files under `data/`, oldest use (modification time) first.
    let files: [(id: FileId, size: UInt64)]
    let notices: [String]

    static func open(_ path: String) throws(CorralError) -> StoreDirectory {
        guard path.hasPrefix("/") else { throw CorralError(.invalidJob, "file store: \(path): must be an absolute path") }
        try makeParents(path)
        let root = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard root >= 0 else { throw CorralError(.system, "file store: open \(path): \(SetupFailure.describe(errno))") }
        var info = stat()
        guard fstat(root, &info) == 0, info.st_uid == geteuid() else {
            _ = close(root)
            throw CorralError(.invalidJob, "file store: \(path) belongs to another user (uid \(info.st_uid)); it must be this user's (uid \(geteuid()))")
        }
        // Only its owner may reach it: not the programs Corral runs, not other users.
        guard info.st_mode & 0o077 == 0 || fchmod(root, 0o700) == 0 else {
            let error = errno
            _ = close(root)
            throw CorralError(.system, "file store: chmod 0700 \(path): \(SetupFailure.describe(error))")
        }
        var opened: [Int32] = []
        for name in ["data", "tmp"] {
            if mkdirat(root, name, 0o700) != 0 && errno != EEXIST {
                let error = errno
                (opened + [root]).forEach { _ = close($0) }
                throw CorralError(.system, "file store: mkdir \(path)/\(name): \(SetupFailure.describe(error))")
            }
            let fd = corral_openat_beneath(root, name, O_RDONLY | corral_o_directory(), 0)
            guard fd >= 0 else {
                let error = errno
                (opened + [root]).forEach { _ = close($0) }
                throw CorralError(.system, "file store: open \(path)/\(name): \(DirectoryHandle.reason(error))")
            }
            opened.append(fd)
        }
        let (data, temporary) = (opened[0], opened[1])
        // What uploads of a process that is gone left (`upload-PID-...`); another live
        // process's (a server and `corral run --file-store` on one directory) stay.
        for name in DirectoryHandle.entries(temporary) where !uploadInFlight(name) { _ = unlinkat(temporary, name, 0) }
        var found: [(id: FileId, size: UInt64, time: timespec)] = []
        var discarded: [String] = []
        for name in DirectoryHandle.entries(data) {
            var entry = stat()
            guard let id = try? FileId(name), fstatat(data, name, &entry, AT_SYMLINK_NOFOLLOW) == 0,
                  (entry.st_mode & S_IFMT) == S_IFREG, entry.st_uid == geteuid() else {
                // A name no upload made: never followed, never served.
                if unlinkat(data, name, 0) != 0 { _ = unlinkat(data, name, AT_REMOVEDIR) }
                discarded.append(name)
                continue
            }
            found.append((id, UInt64(entry.st_size), entry.st_mtim))
        }
        found.sort { ($0.time.tv_sec, $0.time.tv_nsec) < ($1.time.tv_sec, $1.time.tv_nsec) }
        var notices: [String] = []
        if !discarded.isEmpty {
            notices.append("file store: removed \(discarded.count) entries of \(path)/data that are not stored files: \(discarded.prefix(5).joined(separator: ", "))")
        }
        return StoreDirectory(root: root, data: data, temporary: temporary, files: found.map { ($0.id, $0.size) }, notices: notices)
    }

    private static func uploadInFlight(_ name: String) -> Bool {
        let parts = name.split(separator: "-")
        guard parts.count == 3, parts[0] == "upload", let pid = Int32(parts[1]), pid > 0, pid != getpid() else { return false }
        return kill(pid, 0) == 0 || errno == EPERM
    }

    /// `mkdir -p`, every directory it makes 0700: the default store's parent is the state
    /// directory `corral serve` shares and refuses unless it is 0700 (made 0755 here, a
    /// server on the default state directory would not start after a `corral run` had made
    /// the store). Existing directories are left as they are.
    private static func makeParents(_ path: String) throws(CorralError) {
        var current = ""
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o700) != 0 && errno != EEXIST {
                throw CorralError(.system, "file store: mkdir \(current): \(SetupFailure.describe(errno))")
            }
        }
    }
}
