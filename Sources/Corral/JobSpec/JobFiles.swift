import CCorral
#if canImport(Glibc)
import Glibc
#endif

/// The files of a job inside a process's working directory: put in before the run, the
/// stream files opened before any process starts, collected after. Everything beneath the
/// directory's descriptor (``DirectoryHandle``).
extension DirectoryHandle {
    /// Writes a file of the spec (its subdirectories made), never through a link and never
    /// over something already there. `limit`: the job directory's size, for the message.
    func put(_ file: FileSpec, limit: UInt64?) throws(CorralError) {
        var mode: mode_t = file.executable ? 0o755 : 0o644
        let (parent, name) = try parent(of: file.path)
        defer { parent.close() }
        let target = corral_openat_beneath(parent.descriptor, name, O_WRONLY | O_CREAT | O_EXCL, UInt32(mode))
        guard target >= 0 else { throw Self.fileError("create", file.path, errno, limit) }
        defer { _ = Glibc.close(target) }
        switch file.source {
        case .content(let bytes):
            try Self.writeAll(target, bytes, file.path, limit)
        case .copy(let source):
            let input = Glibc.open(source, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
            guard input >= 0 else { throw CorralError(.system, "files: copy \(source): \(SetupFailure.describe(errno))") }
            defer { _ = Glibc.close(input) }
            var info = stat()
            guard fstat(input, &info) == 0 else { throw CorralError(.system, "files: copy \(source): \(SetupFailure.describe(errno))") }
            guard (info.st_mode & S_IFMT) == S_IFREG else { throw CorralError(.system, "files: copy \(source): not a regular file") }
            if info.st_mode & 0o111 != 0 { mode = 0o755 }
            var buffer = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let count = buffer.withUnsafeMutableBytes { Glibc.read(input, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count >= 0 else { throw CorralError(.system, "files: copy \(source): read: \(SetupFailure.describe(errno))") }
                if count == 0 { break }
                try Self.writeAll(target, Array(buffer[0..<count]), file.path, limit)
            }
        case .fromStep:
            // Opened by the step's layout through its ``StepSources`` and given to ``putCopy``.
            throw CorralError(.invalidJob, "files: \(file.path): fromStep is for a step of a job of steps")
        case .stored:
            // Placed by ``placeStored(_:from:link:limit:)`` once the directory is handed over.
            throw CorralError(.system, "files: \(file.path): a stored file is placed from the file store")
        }
        _ = fchmod(target, mode)
    }

    /// Opens a stream file of the spec before any process of the job runs: stdin read-only,
    /// stdout and stderr created or truncated. It must be a regular file: a FIFO, a device,
    /// a socket or a directory is refused without blocking (opened non-blocking, checked
    /// with fstat, then made blocking again).
    func openStream(_ path: SpecPath, output: Bool, field: String, storeLinks: Set<FileIdentity> = []) throws(CorralError) -> Int32 {
        let flags = (output ? O_WRONLY | O_CREAT : O_RDONLY) | O_NONBLOCK
        var fd: Int32
        if output {
            let (parent, name) = try parent(of: path)
            fd = corral_openat_beneath(parent.descriptor, name, flags, 0o644)
            parent.close()
        } else {
            fd = openBeneath(path, flags)
        }
        guard fd >= 0 else {
            let error = errno
            let reason = error == ENXIO ? "not a regular file (a FIFO or a socket)"
                : error == EISDIR ? "not a regular file (a directory)" : Self.reason(error)
            throw CorralError(.invalidJob, "\(field): \(path): \(reason)")
        }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            let kind = Self.kind(info.st_mode)
            _ = Glibc.close(fd)
            throw CorralError(.invalidJob, "\(field): \(path): not a regular file (\(kind))")
        }
        // A second name of a file is a hard link a program may have made to a file it could
        // not read or write itself (where the kernel's protected_hardlinks is off).
        // (Or a stored file Corral linked in read-only for this job.)
        guard info.st_nlink == 1 || (!output && storeLinks.contains(FileIdentity(info))) else {
            _ = Glibc.close(fd)
            throw CorralError(.invalidJob, "\(field): \(path): a file with other names (a hard link) is not opened")
        }
        if output && ftruncate(fd, 0) != 0 {
            let error = errno
            _ = Glibc.close(fd)
            throw CorralError(.system, "\(field): truncate \(path): \(SetupFailure.describe(error))")
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return fd
    }

    /// Reads a file after the run, never through a symbolic link and never outside the
    /// directory; FIFOs, devices and directories are refused. At most `spec.max` bytes, and
    /// at most what is left of the job's report `budget` (the rest is cut: `truncated`).
    func collect(_ spec: CollectSpec, budget: ReportBudget) -> CollectedFile {
        let fd = openBeneath(spec.path, O_RDONLY | O_NONBLOCK)
        guard fd >= 0 else { return CollectedFile(path: spec.path.description, content: nil, error: Self.reason(errno)) }
        defer { _ = Glibc.close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            return CollectedFile(path: spec.path.description, content: nil, error: SetupFailure.describe(errno))
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            return CollectedFile(path: spec.path.description, content: nil, error: "not a regular file (\(Self.kind(info.st_mode)))")
        }
        // Root reads it: never through a hard link a program made to someone else's file.
        guard info.st_nlink == 1 else {
            return CollectedFile(path: spec.path.description, content: nil, error: "a file with other names (a hard link): not read")
        }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var truncated = false
        let cap = budget.take(spec.max)
        defer { budget.giveBack(cap - UInt64(data.count)) }
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count < 0 {
                return CollectedFile(path: spec.path.description, content: nil, error: "read: \(SetupFailure.describe(errno))")
            }
            if count == 0 { break }
            let room = Int(min(UInt64(count), cap - min(cap, UInt64(data.count))))
            data.append(contentsOf: buffer[0..<room])
            if room < count { truncated = true; break }
        }
        return CollectedFile(path: spec.path.description, content: CapturedOutput(data, truncated: truncated), error: nil)
    }

    private static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFIFO: "a FIFO"
        case S_IFDIR: "a directory"
        case S_IFSOCK: "a socket"
        case S_IFLNK: "a symbolic link"
        default: "a device"
        }
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8], _ path: SpecPath, _ limit: UInt64?) throws(CorralError) {
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw fileError("write", path, errno, limit) }
            written += count
        }
    }

    /// A file that could not be put in; one that does not fit in a size-limited directory is
    /// the job's fault, not the system's.
    private static func fileError(_ step: String, _ path: SpecPath, _ error: Int32, _ limit: UInt64?) -> CorralError {
        if let limit, error == ENOSPC {
            return CorralError(.invalidJob, "files: \(path) does not fit in the job's working directory (limit \(LimitValue.describe(bytes: limit)))")
        }
        if error == EEXIST || error == ELOOP || error == EXDEV {
            return CorralError(.invalidJob, "files: \(step) \(path): \(error == EEXIST ? "already given" : reason(error))")
        }
        return CorralError(.system, "files: \(step) \(path): \(SetupFailure.describe(error))")
    }
}
