#if canImport(Glibc)
import Glibc
#endif

/// What Corral processes that died (SIGKILL, a crash) left in temporary directories: job
/// working directories (`corral-job-PID-START-*` in `$TMPDIR` or `/tmp`) and isolation
/// staging directories (`/tmp/corral-root-PID-START-*`).
///
/// Those directories are shared with every local user, who can plant anything under such a
/// name: a symbolic link to a directory of root's, or to a mount point. So nothing is
/// resolved by path. Each entry is opened beneath the base directory's descriptor without
/// following a link (`O_PATH | O_NOFOLLOW | O_DIRECTORY`), and only a directory owned by
/// this process's user (as root: root, or nobody, the user an isolated job's directory is
/// handed to) is touched. A mount is detached only when it is mounted exactly on that
/// directory (its device differs from the base's), through the descriptor itself.
enum StaleDirectories {
    /// Removes the `corral-job-*` directories of dead owners in `base`; returns how many.
    static func removeJobDirectories(in base: String) -> Int {
        guard let parent = Parent(base) else { return 0 }
        defer { close(parent.fd) }
        var removed = 0
        for name in parent.names() {
            guard let owner = CgroupOwner.parse(temporary: name, prefix: "corral-job"), !owner.isAlive,
                  var entry = parent.open(name, owners: jobOwners) else { continue }
            if entry.isMountPoint {
                // A size-limited working directory is a tmpfs of its own: its contents go
                // with it. /proc/self/fd/N names exactly the mount the descriptor holds.
                _ = umount2("/proc/self/fd/\(entry.fd)", Int32(MNT_DETACH))
                close(entry.fd)
                guard let underneath = parent.open(name, owners: jobOwners), !underneath.isMountPoint else { continue }
                entry = underneath
            }
            close(entry.fd)
            // Checked above: a directory of ours, in a base where (sticky, like /tmp) no other
            // user can rename it; the walk never follows a link below it either.
            Workdir.removeTree(base + "/" + name)
            if faccessat(parent.fd, name, F_OK, AT_SYMLINK_NOFOLLOW) != 0 { removed += 1 }
        }
        return removed
    }

    /// Removes the empty staging directories of isolated runs (`/tmp/corral-root-*`) of
    /// dead owners; returns how many.
    static func removeStagingRoots(in base: String = "/tmp") -> Int {
        guard let parent = Parent(base) else { return 0 }
        defer { close(parent.fd) }
        var removed = 0
        for name in parent.names() {
            guard let owner = CgroupOwner.parse(temporary: name, prefix: "corral-root"), !owner.isAlive,
                  let entry = parent.open(name, owners: [geteuid()]) else { continue }
            close(entry.fd)
            // rmdir never follows a link, and refuses a mount point and a non-empty directory.
            if !entry.isMountPoint && unlinkat(parent.fd, name, AT_REMOVEDIR) == 0 { removed += 1 }
        }
        return removed
    }

    /// Who may own a job directory this process removes: itself (a job's directory stays its
    /// Corral's: programs get directories inside it).
    private static var jobOwners: Set<uid_t> {
        [geteuid()]
    }

    /// O_PATH (Glibc's module does not export it without _GNU_SOURCE).
    private static let pathOnly: Int32 = 0o10000000

    /// An entry that passed the checks: an O_PATH descriptor of it, and whether something is
    /// mounted exactly on it.
    struct Entry {
        let fd: Int32
        let isMountPoint: Bool
    }

    /// The base directory, open, and its device.
    struct Parent {
        let fd: Int32
        let device: dev_t

        init?(_ path: String) {
            let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard fd >= 0 else { return nil }
            var info = stat()
            guard fstat(fd, &info) == 0 else {
                close(fd)
                return nil
            }
            self.fd = fd
            device = info.st_dev
        }

        /// The names in the directory, read through its descriptor.
        func names() -> [String] { DirectoryHandle.entries(fd) }

        /// `name` opened without following a link, when it is a directory owned by one of
        /// `owners`; nil otherwise (a link, a file, someone else's).
        func open(_ name: String, owners: Set<uid_t>) -> Entry? {
            guard !name.contains("/") else { return nil }
            let entry = openat(fd, name, StaleDirectories.pathOnly | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC)
            guard entry >= 0 else { return nil }
            var info = stat()
            guard fstat(entry, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR, owners.contains(info.st_uid) else {
                close(entry)
                return nil
            }
            return Entry(fd: entry, isMountPoint: info.st_dev != device)
        }
    }
}
