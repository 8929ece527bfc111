import CCorral
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A job's private working directory: created (0700) under `$TMPDIR` or `/tmp`, filled
/// with the job's files, read from for `collect`, removed after the job.
struct Workdir: Sendable {
    let path: String
    /// The directory, open: every path of the job is resolved beneath it.
    let handle: DirectoryHandle
    /// The size limit when the directory is a tmpfs of its own (``create(keep:limit:inMemory:)``).
    var limit: UInt64?
    /// Whether the directory is a tmpfs of its own (with a `limit`, or `inMemory`).
    var mounted = false

    /// Where working directories go: `$TMPDIR`, else `/tmp`.
    static var base: String { getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp" }

    /// A fresh directory, named after this process (`corral-job-PID-START-XXXXXX`) so that a
    /// later cleanup can remove it if Corral dies; one to keep is `corral-kept-XXXXXX`, which
    /// no cleanup touches.
    ///
    /// With a `limit`, the directory is a tmpfs of that size (and one inode per 8 KiB of it,
    /// at least 4096), so what a job writes there is bounded; its pages count against the
    /// memory of the run that writes them, as `/tmp` in a sandbox does. Mounting needs root.
    /// `inMemory` without a `limit`: a tmpfs all the same (as root; otherwise a plain
    /// directory), of the kernel's default size (half the memory) and at most 2^20 inodes, its pages counted as
    /// above: a step's tests use it, so that a test's files and directories cost no write to
    /// a journal of the disk's file system (on this development host, an ext4 `rmdir` took
    /// 0.08-0.7 ms under load, more than a whole run's overhead).
    /// `inodes`: the tmpfs's files and directories when it has a `limit` (default
    /// ``inodes(for:)``); a step of a job of steps gets what the earlier steps left.
    static func create(keep: Bool = false, limit: UInt64? = nil, inodes: UInt64? = nil, inMemory: Bool = false) throws(CorralError) -> Workdir {
        removeStaleOnce()
        let owner = CgroupOwner.current
        let prefix = keep ? "corral-kept-" : "corral-job-\(owner.pid)-\(owner.startTime)-"
        var template = Array("\(base)/\(prefix)XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw CorralError(.system, "mkdtemp \(base)/\(prefix)XXXXXX: \(SetupFailure.describe(errno))")
        }
        let path = String(cString: made)
        let mounted = limit != nil || (inMemory && geteuid() == 0)
        if mounted {
            let options = limit.map { "size=\($0),nr_inodes=\(inodes ?? Self.inodes(for: $0)),mode=0700" } ?? "nr_inodes=1048576,mode=0700"
            guard mount("tmpfs", path, "tmpfs", UInt(MS_NOSUID | MS_NODEV), options) == 0 else {
                let error = errno
                rmdir(path)
                let what = limit.map { "a working directory of at most \(LimitValue.describe(bytes: $0))" } ?? "a step's directory in memory"
                throw CorralError(.system, "\(what) is a tmpfs: mount \(path): \(SetupFailure.describe(error))")
            }
        }
        let handle: DirectoryHandle
        do {
            handle = try DirectoryHandle.open(path)
        } catch {
            if mounted { _ = umount2(path, Int32(MNT_DETACH)) }
            rmdir(path)
            throw error
        }
        return Workdir(path: path, handle: handle, limit: limit, mounted: mounted)
    }

    /// The files and directories a working directory of `limit` bytes holds: one per 8 KiB,
    /// at least 4096. Each costs kernel memory (about 1 KiB) that no block of the tmpfs counts.
    static func inodes(for limit: UInt64) -> UInt64 { max(4096, limit / 8192) }

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

    /// Removes the directory and everything in it (not following links).
    func remove() {
        handle.close()
        if mounted, umount2(path, Int32(MNT_DETACH)) == 0 {
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
        // Most often the program left nothing (a judge's test): one call. rmdir never
        // follows a link at the end of the path (ENOTDIR), nor removes a non-empty directory.
        if rmdir(path) == 0 { return }
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

    private static func entries(_ directory: Int32) -> [String] { DirectoryHandle.entries(directory) }
}
