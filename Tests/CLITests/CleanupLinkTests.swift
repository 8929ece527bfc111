import CorralTestSupport
import Foundation
import Testing

/// A directory's device differs from its parent's: something is mounted exactly there.
private func isMountPoint(_ path: String) -> Bool {
    var inside = stat(), parent = stat()
    return lstat(path, &inside) == 0 && lstat(path + "/..", &parent) == 0 && inside.st_dev != parent.st_dev
}

private func removedJobDirectories(_ json: String) -> Int? {
    ((try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any])?["jobDirectoriesRemoved"] as? Int
}

private func isSymbolicLink(_ path: String) -> Bool {
    var info = stat()
    return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK
}

@Suite("corral cleanup and what a local user plants in $TMPDIR and /tmp", .serialized, .cgroupExclusive,
       .enabled(if: geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"),
                "needs root (to mount, and to become uid 1000 with setpriv)"))
struct CleanupLinkTests {
    /// Runs a command as uid/gid 1000.
    func asUser(_ arguments: String...) throws {
        let result = try Spawn.run("/usr/bin/setpriv", ["--reuid=1000", "--regid=1000", "--clear-groups"] + arguments)
        try #require(result.status == 0, "\(arguments): \(result.standardError)")
    }

    @Test("links named like a dead Corral's job and staging directories: cleanup as root follows none, unmounts nothing, removes nothing of uid 1000's")
    func plantedLinks() throws {
        // A shared temporary directory like /tmp (world-writable, sticky).
        let base = TemporaryDirectory()
        defer { base.remove() }
        try #require(chmod(base.path, 0o1777) == 0)
        // What the links point at: a directory of root's holding a file, and a mount point.
        let victim = TemporaryDirectory()
        defer { victim.remove() }
        try "precious".write(toFile: victim.file("precious"), atomically: false, encoding: .utf8)
        let mounted = TemporaryDirectory()
        defer { mounted.remove() }
        try #require(mount("tmpfs", mounted.path, "tmpfs", 0, "size=1M,mode=0755") == 0, "mount tmpfs: \(String(cString: strerror(errno)))")
        defer { _ = umount2(mounted.path, Int32(MNT_DETACH)) }
        try "inside".write(toFile: mounted.file("inside"), atomically: false, encoding: .utf8)

        // Owner pid 2^31 - 1 does not exist: every name below belongs to a dead Corral.
        let dead = "\(Int32.max)-1"
        let jobToDirectory = base.file("corral-job-\(dead)-lnkdir")
        let jobToMount = base.file("corral-job-\(dead)-lnkmnt")
        let stagingToMount = "/tmp/corral-root-\(dead)-lnk\(getpid())"
        defer { unlink(stagingToMount) }
        try asUser("/bin/ln", "-s", victim.path, jobToDirectory)
        try asUser("/bin/ln", "-s", mounted.path, jobToMount)
        try asUser("/bin/ln", "-s", mounted.path, stagingToMount)
        // A real directory of uid 1000's, named like a job directory, holding a file.
        let usersOwn = base.file("corral-job-\(dead)-usrdir")
        try asUser("/bin/mkdir", usersOwn)
        try asUser("/bin/sh", "-c", "echo mine > \(usersOwn)/mine")

        let cleanup = try Spawn.run(corralPath, ["cleanup", "--json"], environment: ["TMPDIR=\(base.path)", "PATH=/usr/bin:/bin"])
        // 1 only for a cgroup it could not remove (other runs on this machine may leave some).
        #expect(cleanup.status == 0 || (cleanup.status == 1 && cleanup.standardError.contains("rmdir /sys/fs/cgroup")), "\(cleanup.standardError)")
        #expect(!cleanup.standardError.contains(base.path), "\(cleanup.standardError)")
        #expect(FileManager.default.fileExists(atPath: victim.file("precious")), "the file the link pointed at was removed")
        #expect(isMountPoint(mounted.path), "cleanup unmounted the tmpfs a planted link pointed at")
        #expect(FileManager.default.fileExists(atPath: mounted.file("inside")))
        #expect(FileManager.default.fileExists(atPath: usersOwn + "/mine"), "cleanup removed a directory of uid 1000's")
        // The links themselves are left alone (they are uid 1000's).
        #expect(isSymbolicLink(jobToDirectory) && isSymbolicLink(jobToMount) && isSymbolicLink(stagingToMount))
        #expect(removedJobDirectories(cleanup.standardOutput) == 0, "\(cleanup.standardOutput)")
    }

    @Test("a dead Corral's own job directories are still removed (one that is a tmpfs of its own is unmounted); one owned by nobody is not Corral's")
    func genuineDirectories() throws {
        let base = TemporaryDirectory()
        defer { base.remove() }
        try #require(chmod(base.path, 0o1777) == 0)
        let dead = "\(Int32.max)-1"
        // A size-limited working directory (`corral serve --max-disk`) is a tmpfs mounted on it.
        let limited = base.file("corral-job-\(dead)-tmpfs1")
        try #require(mkdir(limited, 0o700) == 0)
        try #require(mount("tmpfs", limited, "tmpfs", 0, "size=1M,mode=0700") == 0)
        defer { _ = umount2(limited, Int32(MNT_DETACH)) }
        try "x".write(toFile: limited + "/file", atomically: false, encoding: .utf8)
        // A job's directory is always its Corral's (root's): one of nobody's is someone else's
        // (any program running as nobody could have made it), and stays.
        let handed = base.file("corral-job-\(dead)-handed")
        try #require(mkdir(handed, 0o700) == 0)
        try "y".write(toFile: handed + "/file", atomically: false, encoding: .utf8)
        try #require(chown(handed, 65534, 65534) == 0 && chown(handed + "/file", 65534, 65534) == 0)
        let plain = base.file("corral-job-\(dead)-plain1")
        try #require(mkdir(plain, 0o700) == 0)

        let cleanup = try Spawn.run(corralPath, ["cleanup", "--json"], environment: ["TMPDIR=\(base.path)", "PATH=/usr/bin:/bin"])
        // 1 only for a cgroup it could not remove (other runs on this machine may leave some).
        #expect(cleanup.status == 0 || (cleanup.status == 1 && cleanup.standardError.contains("rmdir /sys/fs/cgroup")), "\(cleanup.standardError)")
        #expect(!cleanup.standardError.contains(base.path), "\(cleanup.standardError)")
        #expect(removedJobDirectories(cleanup.standardOutput) == 2, "\(cleanup.standardOutput)")
        for path in [limited, plain] {
            #expect(!FileManager.default.fileExists(atPath: path), "\(path) was left")
        }
        #expect(FileManager.default.fileExists(atPath: handed + "/file"))
    }
}
