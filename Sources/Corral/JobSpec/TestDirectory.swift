import CCorral
#if canImport(Glibc)
import Glibc
#endif

/// The directory a step's tests keep their own files in (``TestFiles``): made once per step
/// (root's, 0700, as root a tmpfs: of the job's size limit when it has one), emptied after each test,
/// removed with the step. No program can reach it by path; what a test's program gets of it
/// are descriptors of files made fresh for that test. Blocking work: off the cooperative pool.
struct TestDirectory: Sendable {
    let workdir: Workdir

    static func create(limit: UInt64?, inodes: UInt64?) throws(CorralError) -> TestDirectory {
        TestDirectory(workdir: try Workdir.create(limit: limit, inodes: inodes, inMemory: true))
    }

    /// A new descriptor of one of the files (the caller, or the run it is given to, closes it).
    func open(_ path: SpecPath, _ flags: Int32) throws(CorralError) -> Int32 {
        let fd = workdir.handle.openBeneath(path, flags)
        guard fd >= 0 else { throw CorralError(.system, "open the test's \(path): \(SetupFailure.describe(errno))") }
        return fd
    }

    /// A new empty file (root's, 0600; never one that is there already), open write-only.
    func create(_ path: SpecPath) throws(CorralError) -> Int32 {
        let fd = workdir.handle.openBeneath(path, O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
        guard fd >= 0 else { throw CorralError(.system, "create the test's \(path): \(SetupFailure.describe(errno))") }
        return fd
    }

    /// Removes a test's files (none is a directory: every one is made here, by Corral).
    func clear(_ paths: [SpecPath]) {
        for path in paths {
            _ = unlinkat(workdir.handle.descriptor, path.name, 0)
        }
    }

    func remove() { workdir.remove() }
}
