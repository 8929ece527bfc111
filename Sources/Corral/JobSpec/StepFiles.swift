import CCorral
#if canImport(Glibc)
import Glibc
#endif

/// The directories of the steps that have run, for the files later steps take from them
/// (``StepFileReference``), and the file store's opener for file ids. A program of the earlier
/// step wrote those directories: a file is opened beneath its process's directory with
/// `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`, non-blocking (a
/// FIFO never blocks Corral), and taken only when `fstat` says it is a regular file with one
/// name (a hard link may name a file the program could not read itself).
struct StepSources: Sendable {
    /// Step name → its directories (the working directory open, owned by the step's layout).
    var steps: [String: StepDirectories] = [:]
    var store: (any StoredFiles)?

    static let none = StepSources()

    /// A read-only descriptor of the file (the caller closes it) and whether any execute bit is set.
    func open(_ reference: StepFileReference, field: String) throws(CorralError) -> (fd: Int32, executable: Bool) {
        guard let directories = steps[reference.step] else {
            throw CorralError(.invalidJob, "\(field): step \"\(reference.step)\" has not run (or left no directory)")
        }
        guard let directory = directories.open(process: reference.process) else {
            throw CorralError(.invalidJob, "\(field): step \"\(reference.step)\" has no such process")
        }
        defer { directory.close() }
        let fd = directory.openBeneath(reference.path, O_RDONLY | O_NONBLOCK)
        guard fd >= 0 else {
            throw CorralError(.invalidJob, "\(field): \(reference.path) of step \"\(reference.step)\": \(DirectoryHandle.reason(errno))")
        }
        var info = stat()
        let problem: String?
        if fstat(fd, &info) != 0 {
            problem = SetupFailure.describe(errno)
        } else if (info.st_mode & S_IFMT) != S_IFREG {
            problem = "not a regular file"
        } else if info.st_nlink != 1 {
            problem = "a file with other names (a hard link) is not taken"
        } else {
            problem = nil
        }
        if let problem {
            _ = Glibc.close(fd)
            throw CorralError(.invalidJob, "\(field): \(reference.path) of step \"\(reference.step)\": \(problem)")
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return (fd, info.st_mode & 0o111 != 0)
    }

    /// A stored file's descriptor, through the file store given to the runner.
    func open(fileId: String, field: String) throws(CorralError) -> Int32 {
        guard let store else { throw CorralError(.invalidJob, "\(field): file ids need a file store, and this runner has none") }
        return try store.open(id: fileId)
    }

    /// A sealed memfd with a stored file's content, open read-only at offset 0: a new open of
    /// the file store's shared sealed copy (``FileStore/openSealedInput(_:)``), or, from
    /// another ``StoredFiles``, a copy made for this run.
    func openSealed(fileId: String, field: String) throws(CorralError) -> Int32 {
        guard let store else { throw CorralError(.invalidJob, "\(field): file ids need a file store, and this runner has none") }
        guard let fileStore = store as? FileStore else {
            let fd = try store.open(id: fileId)
            defer { _ = Glibc.close(fd) }
            return try TestFiles.sealedCopy(of: fd, field)
        }
        let id: FileId
        do { id = try FileId(fileId) } catch { throw CorralError(.invalidJob, "\(field): fileId \(fileId): \(error.description)") }
        do {
            return try fileStore.openSealedInput(id)
        } catch {
            throw CorralError(error.kind == .notFound ? .invalidJob : .system, "\(field): \(error.description)")
        }
    }
}

/// The directories a step left: its working directory, held open until the job ends (one
/// descriptor per step), and its processes' directories, named after them beneath it, opened
/// only when a later step takes a file (``StepSources``). No program can rename or replace
/// them: the working directory is Corral's own (0700, root's as root), and a program enters
/// only its own process's directory, never the one above.
struct StepDirectories: Sendable {
    let workdir: DirectoryHandle
    /// The processes' names; empty: the files are in `workdir` itself (a test's own files).
    let processes: [String]

    /// A new descriptor of the directory of `process` (or of the only process's when nil),
    /// beneath the working directory, following no link; nil when there is no such process
    /// (or it cannot be opened). The caller closes it.
    func open(process: String?) -> DirectoryHandle? {
        if processes.isEmpty { return process == nil ? try? workdir.duplicate() : nil }
        guard let name = process ?? (processes.count == 1 ? processes[0] : nil), processes.contains(name),
              let path = try? SpecPath(name), path.components.count == 1 else { return nil }
        let fd = workdir.openBeneath(path, O_RDONLY | corral_o_directory())
        return fd >= 0 ? DirectoryHandle(descriptor: fd) : nil
    }
}

extension DirectoryHandle {
    /// Copies an open file into a new file `path` beneath this directory (made with O_EXCL,
    /// never through a link), mode 0755 when `executable` else 0644.
    func putCopy(_ path: SpecPath, from input: Int32, executable: Bool, limit: UInt64?) throws(CorralError) {
        let file = FileSpec(path: path, source: .content([]), executable: executable)
        try put(file, limit: limit)
        let (parent, name) = try self.parent(of: path)
        defer { parent.close() }
        let target = corral_openat_beneath(parent.descriptor, name, O_WRONLY, 0)
        guard target >= 0 else { throw CorralError(.system, "files: open \(path): \(DirectoryHandle.reason(errno))") }
        defer { _ = Glibc.close(target) }
        try Self.copy(from: input, to: target, path, limit)
    }

    /// lseek's `SEEK_DATA` and `SEEK_HOLE` (Linux; Glibc's module does not export them).
    private static let seekData: Int32 = 3
    private static let seekHole: Int32 = 4

    /// Everything from `input`'s start to its size now into `target`, holes kept as holes:
    /// only the data ranges (`SEEK_DATA`, `SEEK_HOLE`) are read and written, and the size is
    /// set at the end. A sparse file a program made at no cost (`truncate -s 1T`, a seek past
    /// the end) so costs Corral the data the program wrote, not the zeros of its holes.
    /// `input`'s offset is left where it was.
    static func copy(from input: Int32, to target: Int32, _ path: SpecPath, _ limit: UInt64?) throws(CorralError) {
        var info = stat()
        guard fstat(input, &info) == 0 else { throw CorralError(.system, "files: stat for \(path): \(SetupFailure.describe(errno))") }
        let end = info.st_size
        let saved = lseek(input, 0, SEEK_CUR)
        defer { if saved >= 0 { _ = lseek(input, saved, SEEK_SET) } }
        var offset: off_t = 0
        while offset < end {
            var data = lseek(input, offset, Self.seekData)
            if data < 0 {
                guard errno != ENXIO else { break } // nothing but a hole up to the end
                data = offset // no SEEK_DATA here: everything is data
            }
            guard data < end else { break }
            let hole = lseek(input, data, Self.seekHole)
            try copyRange(from: input, to: target, data, hole > data ? min(hole, end) : end, path, limit)
            offset = hole > data ? hole : end
        }
        guard ftruncate(target, end) == 0 else {
            throw CorralError(.system, "files: size of \(path): \(SetupFailure.describe(errno))")
        }
    }

    /// Bytes `start..<end` of `input` to the same offsets of `target`.
    private static func copyRange(from input: Int32, to target: Int32, _ start: off_t, _ end: off_t, _ path: SpecPath,
                                  _ limit: UInt64?) throws(CorralError) {
        let size = 1 << 16
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        defer { buffer.deallocate() }
        var offset = start
        while offset < end {
            let count = pread(input, buffer, min(size, Int(end - offset)), offset)
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw CorralError(.system, "files: read for \(path): \(SetupFailure.describe(errno))") }
            if count == 0 { return } // shrunk meanwhile
            var written = 0
            while written < count {
                let wrote = pwrite(target, buffer + written, count - written, offset + off_t(written))
                if wrote < 0 && errno == EINTR { continue }
                guard wrote > 0 else {
                    if let limit, errno == ENOSPC {
                        throw CorralError(.invalidJob, "files: \(path) does not fit in the job's working directory (limit \(LimitValue.describe(bytes: limit)))")
                    }
                    throw CorralError(.system, "files: write \(path): \(SetupFailure.describe(errno))")
                }
                written += wrote
            }
            offset += off_t(count)
        }
    }
}
