import CCorral
import Corral
import CorralTestSupport
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Persisted mount templates (`/run/corral-templates`, see `TemplateStore`): a later Corral
/// process enters what it finds there as an isolated run's read-only filesystem, so what it
/// accepts must be a mount namespace that root put in root's own 0700 directory, and nothing
/// else. Each attack plants something in a store directory of the test's own and checks that
/// the store refuses it.
extension SecurityTests {
@Suite("Persisted mount templates")
struct TemplateStoreTests {
    /// A store directory of the test's own (the same code as `/run/corral-templates`), and a
    /// mount namespace newer than the test's (a host namespace cannot be bound into itself):
    /// `unshare -m` sleeping.
    final class Fixture: @unchecked Sendable {
        let tmp: TemporaryDirectory
        let store: String
        let holder: Spawn.Started
        let namespace: Int32

        init() throws {
            let tmp = TemporaryDirectory()
            chmod(tmp.path, 0o700)
            self.tmp = tmp
            store = tmp.file("store")
            let started = try Spawn.start("/usr/bin/unshare", ["-m", "--propagation", "private", "/bin/sleep", "30"])
            holder = started
            var opened: Int32 = -1
            for _ in 0..<200 {
                // Until unshare has made its namespace (then it is not the test's own).
                let fd = Glibc.open("/proc/\(started.pid)/ns/mnt", O_RDONLY | O_CLOEXEC)
                if fd >= 0, Self.inode(fd) != Self.inode(path: "/proc/self/ns/mnt") { opened = fd; break }
                if fd >= 0 { close(fd) }
                usleep(5_000)
            }
            namespace = opened
        }

        deinit {
            if namespace >= 0 { close(namespace) }
            kill(holder.pid, SIGKILL)
            _ = holder.wait(timeout: 5)
            _ = corral_template_store_remove_all(store)
            while umount2(store, Int32(MNT_DETACH)) == 0 {}
            tmp.remove()
        }

        static func inode(_ fd: Int32) -> UInt {
            var info = stat()
            return fstat(fd, &info) == 0 ? UInt(info.st_ino) : 0
        }

        static func inode(path: String) -> UInt {
            var info = stat()
            return stat(path, &info) == 0 ? UInt(info.st_ino) : 0
        }

        /// Opens `name`: the errno, 0 when it opened.
        func open(_ name: String) -> Int32 {
            let fd = corral_template_store_open(store, name)
            guard fd >= 0 else { return errno }
            close(fd)
            return 0
        }

        /// Whether `name` opens as the fixture's namespace.
        func opensAsNamespace(_ name: String) -> Bool {
            let fd = corral_template_store_open(store, name)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            return Self.inode(fd) == Self.inode(namespace)
        }
    }

    @Test("a persisted template is found again as the same mount namespace, and removed by cleanup",
          .enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func roundTrip() throws {
        let fixture = try Fixture()
        try #require(fixture.namespace >= 0, "no mount namespace of unshare's")
        #expect(fixture.open("a") == ENOENT)
        #expect(corral_template_store_save(fixture.store, "a", fixture.namespace, 16) == 0, "\(String(cString: strerror(errno)))")
        var info = stat()
        #expect(stat(fixture.store, &info) == 0 && info.st_uid == 0 && info.st_mode & 0o7777 == 0o700)
        #expect(fixture.opensAsNamespace("a"))
        // A second save of the same name is refused (the first is kept).
        let second = corral_template_store_save(fixture.store, "a", fixture.namespace, 16)
        let secondError = errno
        #expect(second == -1 && secondError == EEXIST)
        #expect(corral_template_store_remove_all(fixture.store) == 1)
        #expect(fixture.open("a") == ENOENT)
        // Emptied, the store goes too: its own mount and its directory (nothing left mounted).
        #expect(!FileManager.default.fileExists(atPath: fixture.store))
        let mounts = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
        #expect(!mounts.contains(fixture.store), "\(mounts)")
        // Saved again, it is made again: root's 0700 directory.
        #expect(corral_template_store_save(fixture.store, "a", fixture.namespace, 16) == 0, "\(String(cString: strerror(errno)))")
        #expect(fixture.opensAsNamespace("a"))
        #expect(corral_template_store_remove_all(fixture.store) == 1)
        #expect(corral_template_store_remove_all(fixture.store) == 0, "a second cleanup has nothing to do")
    }

    /// A store directory someone else could have written into (not root's, or open to group
    /// or others) is not read at all, even when what it holds is a real mount namespace.
    @Test("a store directory that is not root's own 0700 one is refused", .enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func foreignDirectoryIsRefused() throws {
        let fixture = try Fixture()
        try #require(fixture.namespace >= 0, "no mount namespace of unshare's")
        #expect(corral_template_store_save(fixture.store, "a", fixture.namespace, 16) == 0)
        #expect(chmod(fixture.store, 0o733) == 0)
        #expect(fixture.open("a") == EPERM)
        let foreignSave = corral_template_store_save(fixture.store, "b", fixture.namespace, 16)
        let foreignSaveError = errno
        #expect(foreignSave == -1 && foreignSaveError == EPERM)
        #expect(chmod(fixture.store, 0o700) == 0 && chown(fixture.store, 65534, 65534) == 0)
        #expect(fixture.open("a") == EPERM)
        #expect(chown(fixture.store, 0, 0) == 0)
        // A link to the store directory is not followed either.
        #expect(symlink(fixture.store, fixture.tmp.file("link")) == 0)
        let throughLink = corral_template_store_open(fixture.tmp.file("link"), "a")
        let throughLinkError = errno
        #expect(throughLink == -1 && [ELOOP, ENOTDIR].contains(throughLinkError))
        #expect(fixture.opensAsNamespace("a"))
    }

    /// What is planted under a template's name: a link to a real mount namespace, a plain
    /// file, another namespace type (the network namespace bound as `ip netns` binds it).
    /// None is taken; a save replaces what a process that died left (a plain file).
    @Test("a link, a plain file or another namespace type under a template's name is refused",
          .enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func plantedEntriesAreRefused() throws {
        let fixture = try Fixture()
        try #require(fixture.namespace >= 0, "no mount namespace of unshare's")
        #expect(corral_template_store_save(fixture.store, "real", fixture.namespace, 16) == 0)
        #expect(symlink(fixture.store + "/real", fixture.store + "/link") == 0)
        #expect(fixture.open("link") == ELOOP)
        #expect(symlink("/proc/\(fixture.holder.pid)/ns/mnt", fixture.store + "/magic") == 0)
        #expect(fixture.open("magic") == ELOOP)
        #expect(FileManager.default.createFile(atPath: fixture.store + "/plain", contents: Data()))
        #expect(fixture.open("plain") == ESTALE)
        #expect(FileManager.default.createFile(atPath: fixture.store + "/net", contents: Data()))
        #expect(mount("/proc/self/ns/net", fixture.store + "/net", nil, UInt(MS_BIND), nil) == 0)
        #expect(fixture.open("net") == ESTALE)
        let outside = corral_template_store_open(fixture.store, "../store/real")
        let outsideError = errno
        #expect(outside == -1 && outsideError == EXDEV)
        // The plain file is what a process that died between the file and its mount leaves.
        #expect(corral_template_store_save(fixture.store, "plain", fixture.namespace, 16) == 0)
        #expect(fixture.opensAsNamespace("plain"))
        // A full store is emptied before the next template is added.
        #expect(corral_template_store_save(fixture.store, "next", fixture.namespace, 3) == 0)
        #expect((try? FileManager.default.contentsOfDirectory(atPath: fixture.store)) == ["next"])
    }
}
}
