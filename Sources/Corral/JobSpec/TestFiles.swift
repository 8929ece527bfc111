import CCorral
#if canImport(Glibc)
import Glibc
#endif

/// One test's own files, in the step's test directory (``TestDirectory``: root's, 0700, a
/// tmpfs of the job's size limit when it has one) that no program can reach by path: `input`
/// (the tested process's stdin), `answer` and `output` (where its stdout goes), each made
/// fresh for the test (O_EXCL: nothing of an earlier test is reused) and removed after it.
/// The tested program gets descriptors only: its stdin read-only, its stdout write-only, both
/// of files root's and 0600, so it can neither reopen them otherwise nor see the answer.
///
/// A stored input or answer (`fileId`) is not copied when it need not be: the program's stdin
/// is then the store's own file opened read-only (root's, no write bit: the program, never
/// root, can read it and nothing else), and a built-in checker reads the answer from the
/// store. A custom checker or an interactor gets files, so for them it is copied.
/// Blocking work: off the cooperative pool.
struct TestFiles: Sendable {
    let directory: TestDirectory
    /// The tested process's stdin and stdout (taken by its run); nil in an interactive step.
    private(set) var programInput: Int32?
    private(set) var programOutput: Int32?
    /// The answer, read by a built-in checker; nil: the `answer` file (a custom checker's).
    private(set) var answerDescriptor: Int32?

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
        /// Whether the tested program may get a stored file's descriptor as its stdin: Corral is
        /// root and the program runs as another user, so the store's root-owned, read-only file
        /// is out of its reach but for reading.
        var storeDescriptorAllowed: Bool
    }

    static func prepare(_ test: TestSpec, in directory: TestDirectory, use: Use, sources: StepSources, field: String) throws(CorralError) -> TestFiles {
        var files = TestFiles(directory: directory)
        do throws(CorralError) {
            directory.clear()
            let direct = !use.interactive && use.builtinChecker
            if direct, use.storeDescriptorAllowed, case .fileId(let id) = test.input,
               let fd = try storedDescriptor(id, sources: sources, field: "\(field).stdin") {
                files.programInput = fd
            } else {
                try put(test.input, at: input, in: directory, sources: sources, field: "\(field).stdin")
                if !use.interactive { files.programInput = try directory.open(input, O_RDONLY) }
            }
            if direct, case .fileId(let id) = test.answer {
                files.answerDescriptor = try sources.open(fileId: id, field: "\(field).answer")
            } else {
                try put(test.answer ?? .content([]), at: answer, in: directory, sources: sources, field: "\(field).answer")
            }
            let output = try directory.create(output)
            if use.interactive { _ = Glibc.close(output) } else { files.programOutput = output }
        } catch {
            files.remove()
            throw error
        }
        return files
    }

    /// A stored file's descriptor, to give to the program itself only when it is what the
    /// store writes (a regular file, root's, no write or set-id bit, opened read-only); else
    /// nil (another ``StoredFiles`` may hand out something else: then it is copied).
    private static func storedDescriptor(_ id: String, sources: StepSources, field: String) throws(CorralError) -> Int32? {
        let fd = try sources.open(fileId: id, field: field)
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_uid == 0, info.st_mode & 0o7222 == 0,
              fcntl(fd, F_GETFL) & O_ACCMODE == O_RDONLY else {
            _ = Glibc.close(fd)
            return nil
        }
        return fd
    }

    private static func put(_ data: TestData, at path: SpecPath, in directory: TestDirectory, sources: StepSources, field: String) throws(CorralError) {
        let handle = directory.workdir.handle, limit = directory.workdir.limit
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

    /// A file's size in bytes.
    func size(_ path: SpecPath) throws(CorralError) -> UInt64 {
        let fd = try open(path, O_RDONLY)
        defer { _ = Glibc.close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw CorralError(.system, "fstat the test's \(path): \(SetupFailure.describe(errno))") }
        return UInt64(info.st_size)
    }

    /// The answer for a built-in checker: the stored file's descriptor, or the `answer` file
    /// opened (the caller closes it).
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
        sources.steps[Self.stepName] = ["": directory.workdir.handle]
        return sources
    }

    /// A file of the spec that copies one of this test's files in, for `process`.
    static func file(_ path: SpecPath, for process: String?) -> FileSpec {
        FileSpec(path: path, source: .fromStep(StepFileReference(step: stepName, path: path)), process: process)
    }

    /// Closes what no run took and removes the test's files (the directory stays for the next test).
    func remove() {
        for fd in [programInput, programOutput, answerDescriptor] { if let fd { _ = Glibc.close(fd) } }
        directory.clear()
    }
}
