import CCorral
#if canImport(Glibc)
import Glibc
#endif

/// One test's own files, in a directory of their own (root's, 0700, a tmpfs of the job's
/// size limit when it has one) that no program can reach by path: `input` (the tested
/// process's stdin, a copy), `answer` (a copy) and `output` (where its stdout goes). The
/// tested program gets descriptors only: its stdin read-only, its stdout write-only, both of
/// files root's and 0600, so it can neither reopen them otherwise nor see the answer.
/// Blocking work: off the cooperative pool.
struct TestFiles: Sendable {
    let workdir: Workdir
    static let input = try! SpecPath("input")
    static let answer = try! SpecPath("answer")
    static let output = try! SpecPath("output")
    /// The name a custom checker's or an interactor's files are taken from (``StepSources``);
    /// no step can have it (a step's name never starts with a dot).
    static let stepName = ".test"

    static func prepare(_ test: TestSpec, sources: StepSources, limit: UInt64?, field: String) throws(CorralError) -> TestFiles {
        let workdir = try Workdir.create(limit: limit)
        do throws(CorralError) {
            try put(test.input, at: input, in: workdir, sources: sources, field: "\(field).stdin")
            try put(test.answer ?? .content([]), at: answer, in: workdir, sources: sources, field: "\(field).answer")
            try workdir.handle.put(FileSpec(path: output, source: .content([])), limit: workdir.limit)
            for path in [input, answer, output] { _ = fchmodat(workdir.handle.descriptor, path.name, 0o600, 0) }
        } catch {
            workdir.remove()
            throw error
        }
        return TestFiles(workdir: workdir)
    }

    private static func put(_ data: TestData, at path: SpecPath, in workdir: Workdir, sources: StepSources, field: String) throws(CorralError) {
        switch data {
        case .content(let bytes):
            try workdir.handle.put(FileSpec(path: path, source: .content(bytes)), limit: workdir.limit)
        case .fromStep(let reference):
            let (fd, _) = try sources.open(reference, field: field)
            defer { _ = Glibc.close(fd) }
            try workdir.handle.putCopy(path, from: fd, executable: false, limit: workdir.limit)
        case .fileId(let id):
            let fd = try sources.open(fileId: id, field: field)
            defer { _ = Glibc.close(fd) }
            try workdir.handle.putCopy(path, from: fd, executable: false, limit: workdir.limit)
        }
    }

    /// A new descriptor of one of the files (the caller, or the run it is given to, closes it).
    func open(_ path: SpecPath, _ flags: Int32) throws(CorralError) -> Int32 {
        let fd = workdir.handle.openBeneath(path, flags)
        guard fd >= 0 else { throw CorralError(.system, "open the test's \(path): \(SetupFailure.describe(errno))") }
        return fd
    }

    /// A file's size in bytes.
    func size(_ path: SpecPath) throws(CorralError) -> UInt64 {
        let fd = try open(path, O_RDONLY)
        defer { _ = Glibc.close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw CorralError(.system, "fstat the test's \(path): \(SetupFailure.describe(errno))") }
        return UInt64(info.st_size)
    }

    /// The sources a checker's or an interactor's files come from: the steps', and this test's.
    func sources(adding base: StepSources) -> StepSources {
        var sources = base
        sources.steps[Self.stepName] = ["": workdir.handle]
        return sources
    }

    /// A file of the spec that copies one of this test's files in, for `process`.
    static func file(_ path: SpecPath, for process: String?) -> FileSpec {
        FileSpec(path: path, source: .fromStep(StepFileReference(step: stepName, path: path)), process: process)
    }

    func remove() { workdir.remove() }
}
