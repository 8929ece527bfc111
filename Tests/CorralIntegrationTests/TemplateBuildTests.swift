import CCorral
import Corral
import CorralTestSupport
import Foundation
import Synchronization
import Testing

/// Building a mount template (`mount_template.c`) in a process whose other threads spawn
/// programs all the time, as a server's do. The template's child shares Corral's descriptor
/// table while it writes the template's files (`/etc/passwd`, a file bind's mount point);
/// a program spawned by another thread at that moment copied the table, held the file open
/// for writing until its exec, and the child's read-only remount of the tmpfs failed with
/// EBUSY: an isolated run's setup-error ("remounting it read-only"), seen in CI.
@Suite("Mount template builds beside spawning threads")
struct TemplateBuildTests {
    @Test("every build succeeds while other threads spawn", .enabled(if: geteuid() == 0, "a mount namespace needs root; not root here"))
    func buildsBesideSpawns() throws {
        let staging = TemporaryDirectory()
        defer { staging.remove() }
        let stop = Atomic<Bool>(false)
        let spawned = Atomic<Int>(0)
        // Two threads spawning /bin/true back to back (posix_spawn copies the descriptor
        // table and holds it until the exec).
        var spawners: [Thread] = []
        for _ in 0..<2 {
            let thread = Thread {
                var argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/true"), nil]
                defer { free(argv[0]) }
                while !stop.load(ordering: .relaxed) {
                    var pid: pid_t = 0
                    if posix_spawn(&pid, "/bin/true", nil, nil, &argv, environ) == 0 {
                        var status: Int32 = 0
                        waitpid(pid, &status, 0)
                        spawned.add(1, ordering: .relaxed)
                    }
                }
            }
            thread.start()
            spawners.append(thread)
        }
        defer { stop.store(true, ordering: .relaxed) }
        while spawned.load(ordering: .relaxed) < 10 { usleep(1_000) }

        // A template like an isolated run's: files written into a tmpfs, a file bind's mount
        // point, then everything remounted read-only.
        let content = String(repeating: "nobody:x:65534:65534:nobody:/:/bin/false\n", count: 2_000)
        let targets = ["/etc", "/etc/passwd", "/etc/group", "/etc/hosts", "/etc/resolv.conf"]
        var failures: [String] = []
        let builds = 300
        try content.withCString { text in
            let length = UInt(strlen(text))
            let strings = targets.map { strdup($0)! }
            defer { strings.forEach { free($0) } }
            let tmpfsOptions = strdup("mode=0755,size=1m")!
            defer { free(tmpfsOptions) }
            let mounts = [
                corral_mount(kind: Int32(CORRAL_MOUNT_TMPFS.rawValue), source: nil, source_fd: -1, target: UnsafePointer(strings[0]), writable: 0,
                             data: UnsafePointer(tmpfsOptions), length: 0),
                corral_mount(kind: Int32(CORRAL_MOUNT_FILE.rawValue), source: text, source_fd: -1, target: UnsafePointer(strings[1]), writable: 0,
                             data: nil, length: length),
                corral_mount(kind: Int32(CORRAL_MOUNT_FILE.rawValue), source: text, source_fd: -1, target: UnsafePointer(strings[2]), writable: 0,
                             data: nil, length: length),
                corral_mount(kind: Int32(CORRAL_MOUNT_FILE.rawValue), source: text, source_fd: -1, target: UnsafePointer(strings[3]), writable: 0,
                             data: nil, length: length),
            ]
            let runMounts = [
                corral_mount(kind: Int32(CORRAL_MOUNT_BIND_FILE.rawValue), source: UnsafePointer(strings[4]), source_fd: -1, target: UnsafePointer(strings[4]),
                             writable: 0, data: nil, length: 0),
            ]
            for build in 0..<builds {
                let root = staging.file("root-\(build)")
                guard mkdir(root, 0o755) == 0 else { throw POSIXError(.EIO) }
                var failure = corral_child_failure()
                let fd = corral_mount_template_create(root, mounts, Int32(mounts.count), runMounts, Int32(runMounts.count), &failure)
                if fd >= 0 {
                    close(fd)
                } else {
                    failures.append("build \(build): stage \(failure.stage), detail \(failure.detail), \(String(cString: strerror(failure.error)))")
                }
                rmdir(root)
            }
        }
        stop.store(true, ordering: .relaxed)
        print("template builds: \(builds), failed \(failures.count), programs spawned meanwhile \(spawned.load(ordering: .relaxed))")
        #expect(spawned.load(ordering: .relaxed) > builds, "the spawning threads must have run throughout")
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }
}
