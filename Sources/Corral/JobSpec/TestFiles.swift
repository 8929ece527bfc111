import CCorral
#if canImport(Glibc)
import Glibc
#endif

/// One test's own files. The tested program gets descriptors only: its stdout write-only on
/// `output`, a new file in the step's test directory (``TestDirectory``: root's, 0700, a tmpfs
/// of the job's size limit when it has one, that no program can reach by path), and its stdin
/// read-only:
/// - inline content: a sealed memfd (no write,
///   grow, shrink or further seal, not even through /proc/self/fd/0; no name on any file
///   system, so nothing to link to);
/// - a stored file (`fileId`) for an isolated program running as another user than root: the
///   store's own file opened read-only (root's, no write bit, outside the program's mount
///   namespace: it can read it and nothing else; no copy);
/// - a stored file for a program that is not isolated (or runs as root, or Corral is not
///   root): a new read-only open of the store's sealed memfd copy of it, made once and shared
///   by the runs (``SealedInputCache``; each run its own open file description, so its own
///   offset). Such a program shares the host's mounts: through /proc/self/fd/0 it would learn
///   the store's path and, where the kernel's `fs.protected_hardlinks` is off, could give the
///   store's file a name of its own (which would outlive its eviction and the store's bound);
/// - otherwise (a step's file, a custom checker's or an interactor's input): the `input` file,
///   root's and 0600, which the checker or interactor also gets.
/// A built-in checker compares an inline answer from memory; `answer` is a file when a custom
/// checker or an interactor reads it. Every file is made
/// fresh for the test (O_EXCL: nothing of an earlier test is reused) and removed after it.
/// Blocking work: off the cooperative pool.
struct TestFiles: Sendable {
    let directory: TestDirectory
    /// The tested process's stdin and stdout (taken by its run); nil in an interactive step.
    private(set) var programInput: Int32?
    private(set) var programOutput: Int32?
    /// The answer, read by a built-in checker: given inline (compared from memory, no file
    /// made), or a stored file's descriptor; both nil: the `answer` file (a custom checker's).
    private(set) var answerBytes: [UInt8]?
    private(set) var answerDescriptor: Int32?
    /// The files made in the test directory, removed by ``remove()``.
    private var made: [SpecPath] = []

    static let input = try! SpecPath("input")
    static let answer = try! SpecPath("answer")
    static let output = try! SpecPath("output")
    /// The name a custom checker's or an interactor's files are taken from (``StepSources``);
    /// no step can have it (a step's name never starts with a dot).
    static let stepName = ".test"

    /// How the step uses the test's files.
    struct Use: Sendable {
        /// An interactor gets `input` and `answer` as files (and no stdin is made).
        var interactive: Bool
        /// A built-in checker compares descriptors; a custom one gets files.
        var builtinChecker: Bool
        /// Whether the tested program may get a stored file's own descriptor as its stdin:
        /// Corral is root and the program is isolated and runs as another user, so the store's
        /// root-owned, read-only file is out of its reach but for reading.
        var storeDescriptorAllowed: Bool
    }

    static func prepare(_ test: TestSpec, in directory: TestDirectory, use: Use, sources: StepSources, field: String) throws(CorralError) -> TestFiles {
        var files = TestFiles(directory: directory)
        do throws(CorralError) {
            let direct = !use.interactive && use.builtinChecker
            switch test.input {
            case .content(let bytes) where direct:
                files.programInput = try sealed(bytes, "\(field).stdin")
            case .fileId(let id) where direct:
                if use.storeDescriptorAllowed {
                    let fd = try sources.open(fileId: id, field: "\(field).stdin")
                    if isStoreFile(fd) {
                        files.programInput = fd
                    } else {
                        defer { _ = Glibc.close(fd) }
                        files.programInput = try sealedCopy(of: fd, "\(field).stdin")
                    }
                } else {
                    files.programInput = try sources.openSealed(fileId: id, field: "\(field).stdin")
                }
            default:
                try files.put(test.input, at: input, sources: sources, field: "\(field).stdin")
                if !use.interactive { files.programInput = try directory.open(input, O_RDONLY) }
            }
            switch test.answer {
            case .fileId(let id) where direct:
                files.answerDescriptor = try sources.open(fileId: id, field: "\(field).answer")
            case .content(let bytes) where direct:
                files.answerBytes = bytes
            case nil where direct:
                files.answerBytes = []
            default:
                try files.put(test.answer ?? .content([]), at: answer, sources: sources, field: "\(field).answer")
            }
            files.made.append(Self.output) // removed even when it was there already (EEXIST)
            let output = try directory.create(output)
            if use.interactive { _ = Glibc.close(output) } else { files.programOutput = output }
        } catch {
            files.remove()
            throw error
        }
        return files
    }

    /// Whether a stored file's descriptor is what the store writes (a regular file, root's,
    /// no write or set-id bit, opened read-only): another ``StoredFiles`` may hand out
    /// something else, which is then copied.
    private static func isStoreFile(_ fd: Int32) -> Bool {
        var info = stat()
        return fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG && info.st_uid == 0 && info.st_mode & 0o7222 == 0
            && fcntl(fd, F_GETFL) & O_ACCMODE == O_RDONLY
    }

    private static func sealed(_ bytes: [UInt8], _ field: String) throws(CorralError) -> Int32 {
        let fd = bytes.withUnsafeBytes { corral_sealed_memfd("corral-test", $0.baseAddress, $0.count) }
        guard fd >= 0 else { throw CorralError(.system, "\(field): a sealed memfd: \(SetupFailure.describe(errno))") }
        return fd
    }

    static func sealedCopy(of source: Int32, _ field: String) throws(CorralError) -> Int32 {
        var info = stat()
        guard fstat(source, &info) == 0 else { throw CorralError(.system, "\(field): fstat the stored file: \(SetupFailure.describe(errno))") }
        let fd = corral_sealed_memfd_copy("corral-test", source, UInt64(info.st_size))
        guard fd >= 0 else { throw CorralError(.system, "\(field): a sealed copy of the stored file: \(SetupFailure.describe(errno))") }
        return fd
    }

    private mutating func put(_ data: TestData, at path: SpecPath, sources: StepSources, field: String) throws(CorralError) {
        let handle = directory.workdir.handle, limit = directory.workdir.limit
        made.append(path) // removed even when half made
        switch data {
        case .content(let bytes):
            try handle.put(FileSpec(path: path, source: .content(bytes)), limit: limit)
        case .fromStep(let reference):
            let (fd, _) = try sources.open(reference, field: field)
            defer { _ = Glibc.close(fd) }
            try handle.putCopy(path, from: fd, executable: false, limit: limit)
        case .fileId(let id):
            let fd = try sources.open(fileId: id, field: field)
            defer { _ = Glibc.close(fd) }
            try handle.putCopy(path, from: fd, executable: false, limit: limit)
        }
        guard fchmodat(handle.descriptor, path.name, 0o600, 0) == 0 else {
            throw CorralError(.system, "chmod the test's \(path): \(SetupFailure.describe(errno))")
        }
    }

    /// The descriptors the tested process gets (its run takes them over), once.
    mutating func takeProgramDescriptors() -> [Int32: Int32] {
        guard let programInput, let programOutput else { return [:] }
        self.programInput = nil
        self.programOutput = nil
        return [0: programInput, 1: programOutput]
    }

    /// A new descriptor of one of the files (the caller, or the run it is given to, closes it).
    func open(_ path: SpecPath, _ flags: Int32) throws(CorralError) -> Int32 { try directory.open(path, flags) }

    /// The answer for a built-in checker: the stored file's or the memfd's descriptor, or the
    /// `answer` file opened (the caller closes it).
    func openAnswer() throws(CorralError) -> Int32 {
        if let answerDescriptor {
            let copy = fcntl(answerDescriptor, F_DUPFD_CLOEXEC, 3)
            guard copy >= 0 else { throw CorralError(.system, "dup the test's answer: \(SetupFailure.describe(errno))") }
            return copy
        }
        return try open(Self.answer, O_RDONLY)
    }

    /// The sources a checker's or an interactor's files come from: the steps', and this test's.
    func sources(adding base: StepSources) -> StepSources {
        var sources = base
        sources.steps[Self.stepName] = StepDirectories(workdir: directory.workdir.handle, processes: [])
        return sources
    }

    /// A file of the spec that copies one of this test's files in, for `process`.
    static func file(_ path: SpecPath, for process: String?) -> FileSpec {
        FileSpec(path: path, source: .fromStep(StepFileReference(step: stepName, path: path)), process: process)
    }

    /// Closes what no run took and removes the test's files (the directory stays for the next test).
    func remove() {
        for fd in [programInput, programOutput, answerDescriptor] { if let fd { _ = Glibc.close(fd) } }
        directory.clear(made)
    }
}
