import CCorral
#if canImport(Glibc)
import Glibc
#endif

/// An open directory that paths of a job spec are resolved beneath: every open, create and
/// chown goes through its descriptor with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
/// RESOLVE_NO_MAGICLINKS)` or an `*at` call on a parent opened that way, so neither `..`,
/// a symbolic link nor a directory swapped by a program can take Corral anywhere else.
/// The caller closes it (``close()``).
struct DirectoryHandle: Sendable {
    let descriptor: Int32

    /// Opens a directory Corral made itself (a job's working directory).
    static func open(_ path: String) throws(CorralError) -> DirectoryHandle {
        let fd = Glibc.open(path, O_RDONLY | corral_o_directory() | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw CorralError(.system, "open \(path): \(SetupFailure.describe(errno))") }
        return DirectoryHandle(descriptor: fd)
    }

    func close() { _ = Glibc.close(descriptor) }

    /// `openat2` beneath this directory: -1 with errno on failure.
    func openBeneath(_ path: SpecPath, _ flags: Int32, mode: mode_t = 0) -> Int32 {
        corral_openat_beneath(descriptor, path.description, flags, UInt32(mode))
    }

    /// A subdirectory, made (0755, or `mode`) with its parents where missing, and opened.
    func makeDirectory(_ path: SpecPath, mode: mode_t = 0o755) throws(CorralError) -> DirectoryHandle {
        var current = DirectoryHandle(descriptor: fcntl(descriptor, F_DUPFD_CLOEXEC, 3))
        guard current.descriptor >= 0 else { throw CorralError(.system, "dup: \(SetupFailure.describe(errno))") }
        for component in path.components {
            if mkdirat(current.descriptor, component, mode) != 0 && errno != EEXIST {
                let error = errno
                current.close()
                throw CorralError(.system, "mkdir \(path): \(SetupFailure.describe(error))")
            }
            let next = corral_openat_beneath(current.descriptor, component, O_RDONLY | corral_o_directory(), 0)
            let error = errno
            current.close()
            guard next >= 0 else { throw CorralError(.system, "open \(path): \(Self.reason(error))") }
            current = DirectoryHandle(descriptor: next)
        }
        return current
    }

    /// The directory holding `path`'s last component (made where missing), and that name.
    func parent(of path: SpecPath) throws(CorralError) -> (DirectoryHandle, String) {
        if let parent = path.parent { return (try makeDirectory(parent), path.name) }
        return (try duplicate(), path.name)
    }

    /// Another descriptor of the same directory, to close on its own.
    func duplicate() throws(CorralError) -> DirectoryHandle {
        let copy = fcntl(descriptor, F_DUPFD_CLOEXEC, 3)
        guard copy >= 0 else { throw CorralError(.system, "dup: \(SetupFailure.describe(errno))") }
        return DirectoryHandle(descriptor: copy)
    }

    /// An O_PATH descriptor of a directory beneath this one: what a run's working directory
    /// is given as (`fchdir`, or the source of an isolated run's `/box` mount).
    func openDirectoryPath(_ path: SpecPath) throws(CorralError) -> Int32 {
        let fd = openBeneath(path, corral_o_path() | corral_o_directory())
        guard fd >= 0 else { throw CorralError(.invalidJob, "dir \(path): \(Self.reason(errno))") }
        return fd
    }

    /// Gives everything in this directory to `owner`, through descriptors only (no link is
    /// followed, nothing is resolved by path). The directory itself stays its owner's (root's:
    /// so that only Corral, never a program, owns a job's directory and can remove it as
    /// its own) and gets the owner's group with mode 0770: the program works in it through
    /// its group.
    func hand(to owner: RunUser) throws(CorralError) {
        guard fchown(descriptor, UInt32.max, owner.gid) == 0, fchmod(descriptor, 0o770) == 0 else {
            throw CorralError(.system, "chown to group \(owner.gid): \(SetupFailure.describe(errno))")
        }
        try handContents(to: owner)
    }

    private func handContents(to owner: RunUser) throws(CorralError) {
        for name in Self.entries(descriptor) {
            // A file with other names is not only this job's (a stored file linked in
            // read-only): its owner stays.
            var info = stat()
            if fstatat(descriptor, name, &info, AT_SYMLINK_NOFOLLOW) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_nlink > 1 {
                continue
            }
            guard fchownat(descriptor, name, owner.uid, owner.gid, AT_SYMLINK_NOFOLLOW) == 0 else {
                throw CorralError(.system, "chown \(name) to \(owner): \(SetupFailure.describe(errno))")
            }
            let child = corral_openat_beneath(descriptor, name, O_RDONLY | corral_o_directory(), 0)
            guard child >= 0 else { continue } // not a directory
            let handle = DirectoryHandle(descriptor: child)
            defer { handle.close() }
            try handle.handContents(to: owner)
        }
    }

    /// A reason for an openat2 failure beneath a job's directory, in a user's words.
    static func reason(_ error: Int32) -> String {
        switch error {
        case ELOOP: "a symbolic link (not followed)"
        case EXDEV: "outside the working directory"
        case ENOENT: "no such file"
        case ENOSYS: "this kernel has no openat2 (Linux 5.6 or later is needed)"
        default: SetupFailure.describe(error)
        }
    }

    /// The names in an open directory (not `.` and `..`); the descriptor stays open.
    static func entries(_ directory: Int32) -> [String] {
        let copy = fcntl(directory, F_DUPFD_CLOEXEC, 3)
        guard copy >= 0, let handle = fdopendir(copy) else { return [] }
        defer { closedir(handle) }
        rewinddir(handle)
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
