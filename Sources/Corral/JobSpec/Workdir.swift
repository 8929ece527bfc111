import CCorral
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A job's private working directory: created (0700) under `$TMPDIR` or `/tmp`, filled
/// with the job's files, read from for `collect`, removed after the job.
struct Workdir: Sendable {
    let path: String
    /// The size limit when the directory is a tmpfs of its own (``create(keep:limit:)``).
    var limit: UInt64?

    /// Where working directories go: `$TMPDIR`, else `/tmp`.
    static var base: String { getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp" }

    /// A fresh directory, named after this process (`corral-job-PID-START-XXXXXX`) so that a
    /// later cleanup can remove it if Corral dies; one to keep is `corral-kept-XXXXXX`, which
    /// no cleanup touches.
    ///
    /// With a `limit`, the directory is a tmpfs of that size (and one inode per 8 KiB of it,
    /// at least 4096), so what a job writes there is bounded; its pages count against the
    /// memory of the run that writes them, as `/tmp` in a sandbox does. Mounting needs root.
    static func create(keep: Bool = false, limit: UInt64? = nil) throws(CorralError) -> Workdir {
        removeStaleOnce()
        let owner = CgroupOwner.current
        let prefix = keep ? "corral-kept-" : "corral-job-\(owner.pid)-\(owner.startTime)-"
        var template = Array("\(base)/\(prefix)XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw CorralError(.system, "mkdtemp \(base)/\(prefix)XXXXXX: \(SetupFailure.describe(errno))")
        }
        let path = String(cString: made)
        if let limit {
            let options = "size=\(limit),nr_inodes=\(max(4096, limit / 8192)),mode=0700"
            guard mount("tmpfs", path, "tmpfs", UInt(MS_NOSUID | MS_NODEV), options) == 0 else {
                let error = errno
                rmdir(path)
                throw CorralError(.system, "a working directory of at most \(LimitValue.describe(bytes: limit)) is a tmpfs: mount \(path): \(SetupFailure.describe(error))")
            }
        }
        return Workdir(path: path, limit: limit)
    }

    /// Whether the job filled its size-limited directory (no block or no inode left).
    var isFull: Bool {
        guard limit != nil else { return false }
        var info = statvfs()
        return statvfs(path, &info) == 0 && (info.f_bavail == 0 || info.f_favail == 0)
    }

    private static let staleRemoved = Atomic<Bool>(false)

    /// The first job of a process removes the working directories of Corral processes that
    /// died (SIGKILL, a crash) in the same base directory.
    private static func removeStaleOnce() {
        guard staleRemoved.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        _ = removeStale()
    }

    /// Removes `corral-job-PID-START-*` directories of `base` whose owner is gone, never
    /// through a link nor anyone else's (see ``StaleDirectories``); returns how many.
    static func removeStale(in base: String = Workdir.base) -> Int {
        StaleDirectories.removeJobDirectories(in: base)
    }

    /// A path of the spec: relative ones are inside the working directory.
    func resolve(_ relative: String) -> String {
        relative.hasPrefix("/") ? relative : path + "/" + relative
    }

    /// Gives the directory, and everything put into it, to `owner` (the user an isolated
    /// process runs as, so that it can work in `/box`). Nothing of the program's exists yet.
    func hand(to owner: (uid: UInt32, gid: UInt32)) throws(CorralError) {
        func give(_ target: String) throws(CorralError) {
            guard lchown(target, owner.uid, owner.gid) == 0 else {
                throw CorralError(.system, "chown \(target) to \(owner.uid):\(owner.gid): \(SetupFailure.describe(errno))")
            }
        }
        try give(path)
        guard let walker = FileManager.default.enumerator(atPath: path) else { return }
        while let relative = walker.nextObject() as? String { try give(path + "/" + relative) }
    }

    /// Opens a stream file of the spec before any process of the job runs (so no program can
    /// have put a symbolic link in its place): relative paths inside the directory, never
    /// through a symbolic link in the last component.
    func openStream(_ relative: String, output: Bool) throws(CorralError) -> Int32 {
        let flags = output ? O_WRONLY | O_CREAT | O_TRUNC : O_RDONLY
        let fd = open(resolve(relative), flags | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw CorralError(.system, "\(output ? "create" : "open") \(relative): \(SetupFailure.describe(errno))")
        }
        return fd
    }

    func put(_ files: [FileSpec]) throws(CorralError) {
        for file in files {
            let target = resolve(file.path)
            let components = file.path.split(separator: "/").dropLast()
            var directory = path
            for component in components {
                directory += "/" + component
                if mkdir(directory, 0o755) != 0 && errno != EEXIST {
                    throw CorralError(.system, "files: mkdir \(directory): \(SetupFailure.describe(errno))")
                }
            }
            var mode: mode_t = file.executable ? 0o755 : 0o644
            let bytes: [UInt8]
            switch file.source {
            case .content(let content): bytes = content
            case .copy(let source):
                var info = stat()
                guard stat(source, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, let content = ProcFS.read(source) else {
                    throw CorralError(.system, "files: copy \(source): \(errno == 0 ? "not a regular file" : SetupFailure.describe(errno))")
                }
                if info.st_mode & 0o111 != 0 { mode = 0o755 }
                bytes = content
            }
            let fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
            guard fd >= 0 else { throw fileError("create", file.path) }
            defer { close(fd) }
            var written = 0
            while written < bytes.count {
                let count = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { throw fileError("write", file.path) }
                written += count
            }
            _ = fchmod(fd, mode)
        }
    }

    /// A file that could not be put in; one that does not fit in a size-limited directory is
    /// the job's fault, not the system's.
    private func fileError(_ step: String, _ name: String) -> CorralError {
        let error = errno
        if let limit, error == ENOSPC {
            return CorralError(.invalidJob, "files: \(name) does not fit in the job's working directory (limit \(LimitValue.describe(bytes: limit)))")
        }
        return CorralError(.system, "files: \(step) \(name): \(SetupFailure.describe(error))")
    }

    /// Reads a file of the working directory, never through a symbolic link and never
    /// outside the directory; FIFOs, devices and directories are refused.
    func collect(_ spec: CollectSpec) -> CollectedFile {
        let directory = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else { return CollectedFile(path: spec.path, content: nil, error: "the working directory is gone") }
        defer { close(directory) }
        var fd = corral_open_beneath(directory, spec.path)
        if fd < 0 && errno == ENOSYS { fd = Self.openByComponents(directory, spec.path) }
        guard fd >= 0 else {
            let reason: String
            switch errno {
            case ELOOP: reason = "a symbolic link (not followed)"
            case EXDEV: reason = "outside the working directory"
            case ENOENT: reason = "no such file"
            default: reason = SetupFailure.describe(errno)
            }
            return CollectedFile(path: spec.path, content: nil, error: reason)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return CollectedFile(path: spec.path, content: nil, error: SetupFailure.describe(errno)) }
        let type = info.st_mode & S_IFMT
        guard type == S_IFREG else {
            let kind = type == S_IFIFO ? "a FIFO" : type == S_IFDIR ? "a directory" : type == S_IFSOCK ? "a socket" : "a device"
            return CollectedFile(path: spec.path, content: nil, error: "not a regular file (\(kind))")
        }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var truncated = false
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            let room = Int(min(UInt64(count), spec.max - min(spec.max, UInt64(data.count))))
            data.append(contentsOf: buffer[0..<room])
            if room < count { truncated = true; break }
        }
        return CollectedFile(path: spec.path, content: CapturedOutput(data, truncated: truncated), error: nil)
    }

    /// Where openat2 is missing: one component at a time, none of them a link.
    private static func openByComponents(_ directory: Int32, _ path: String) -> Int32 {
        let components = path.split(separator: "/").map(String.init)
        guard !components.contains("..") else { errno = EXDEV; return -1 }
        var current = dup(directory)
        for (index, component) in components.enumerated() {
            let last = index == components.count - 1
            let flags = O_NOFOLLOW | O_CLOEXEC | (last ? O_RDONLY | O_NONBLOCK : O_RDONLY | O_DIRECTORY)
            let next = openat(current, component, flags)
            let saved = errno
            close(current)
            guard next >= 0 else { errno = saved; return -1 }
            current = next
        }
        return current
    }

    /// Removes the directory and everything in it (not following links).
    func remove() {
        if limit != nil, umount2(path, Int32(MNT_DETACH)) == 0 {
            _ = rmdir(path)
            return
        }
        Self.removeTree(path)
    }

    /// Removes a tree that programs wrote, safely while one may still be changing it: every
    /// step is relative to an open directory and never follows a link, and a directory two
    /// levels down is first moved up to the top, so neither recursion nor open descriptors
    /// grow with the tree's depth (a program can nest directories as deep as it likes).
    static func removeTree(_ path: String) {
        let top = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard top >= 0 else {
            _ = rmdir(path)
            return
        }
        var serial = 0
        while true {
            let names = entries(top)
            if names.isEmpty { break }
            var progress = false
            for name in names {
                if unlinkat(top, name, 0) == 0 {
                    progress = true
                    continue
                }
                var child = openat(top, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if child < 0 && errno == EACCES {
                    openUp(top, name)
                    child = openat(top, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                }
                guard child >= 0 else { continue }
                _ = fchmod(child, 0o700)
                for inner in entries(child) where unlinkat(child, inner, 0) != 0 {
                    // A directory: up to the top, where the next pass empties it (moving a
                    // directory needs write permission on it, which its program may have taken away).
                    openUp(child, inner)
                    for _ in 0..<8 {
                        serial += 1
                        if renameat(child, inner, top, ".corral-removing-\(serial)") == 0 { break }
                    }
                }
                close(child)
                if unlinkat(top, name, AT_REMOVEDIR) == 0 { progress = true }
            }
            if !progress { break } // what is left cannot be removed (a mount point, an immutable file)
        }
        close(top)
        _ = rmdir(path)
    }

    /// Gives back to its owner a directory its program made unreadable or unwritable (chmod
    /// 000): through an O_PATH descriptor, so a link put in its place is never followed.
    private static func openUp(_ parent: Int32, _ name: String) {
        let handle = openat(parent, name, pathOnly | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard handle >= 0 else { return }
        _ = chmod("/proc/self/fd/\(handle)", 0o700)
        close(handle)
    }

    /// O_PATH (Glibc's module does not export it without _GNU_SOURCE).
    private static let pathOnly: Int32 = 0o10000000

    /// The names in an open directory (not `.` and `..`); the descriptor stays open.
    private static func entries(_ directory: Int32) -> [String] {
        let copy = dup(directory)
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
