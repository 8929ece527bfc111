import CCorral
#if canImport(Glibc)
import Glibc
#endif

/// The filesystem of an isolated run, built by its init on a fresh tmpfs before
/// `pivot_root`: read-only, nosuid, nodev binds of `/usr`, `/bin`, `/sbin`, `/lib*` (or the
/// same symbolic links where the host has merged them into `/usr`), the `/etc` essentials
/// the dynamic linker and common runtimes need (`ld.so.cache`, `alternatives`, `java-*`,
/// `localtime`, `ssl/certs` with the host's network, a `passwd`/`group` with only root,
/// nobody and the run's user, and a `hosts` with localhost), a fresh `/proc`, a minimal
/// `/dev` (`null`, `zero`, `full`, `random`, `urandom`, `fd` links, a private `shm`), a
/// private `/tmp`, and the working directory read-write at `/box` (an empty private tmpfs when there is none). The
/// root is remounted read-only and the old root detached: nothing else of the host is
/// reachable.
///
/// With corral-init (`templated`), the read-only part is not built per run: it lives in a
/// mount template (``MountTemplates``), made once, and `mounts` holds only the entries each
/// run mounts itself on the template's mount points: `/proc` (and its masks), the `/tmp`,
/// `/dev/shm` and `--tmpfs` mounts, and `/box`.
final class MinimalFilesystem: @unchecked Sendable {
    /// The empty host directory the root is built on; nil with a template.
    let staging: String?
    /// What the init mounts (all of it, or with a template the per-run entries).
    private(set) var mounts: [corral_mount] = []
    /// The template's entries (empty without one).
    private var templateMounts: [corral_mount] = []
    private(set) var template: MountTemplate?
    private let templated: Bool
    private var strings: [UnsafeMutablePointer<CChar>] = []

    static let box = "/box"

    /// What each tmpfs Corral mounts inside (`/tmp`, `/dev/shm`, an empty `/box`) may hold
    /// without a memory limit; with one, the limit. Their pages count against the run's
    /// memory cgroup too, but a rootless run usually has none.
    static let defaultScratchSize: UInt64 = 512 << 20

    /// `workingDirectory`: the directory mounted at `/box`, as Corral opened it (an O_PATH
    /// descriptor) and its path. The init opens the path again in its own mount namespace
    /// without following any link, checks it is the same directory (device and inode) and
    /// binds that descriptor, so a directory a program swapped for a link never becomes /box.
    ///
    /// `templated`: the init is corral-init, which can enter a mount template. Not with a
    /// `--bind` or `--tmpfs` target below a per-run mount (`/tmp`, `/dev/shm`, `/proc`, another
    /// `--bind` or `--tmpfs`): its mount point is made in that run's own mount, not in the
    /// template.
    init(isolation: Isolation, user: RunUser, limits: Limits, workingDirectory: (path: String, descriptor: Int32)?,
         templated: Bool = false) throws(SetupFailure) {
        let userTargets = isolation.binds.map(\.target) + isolation.tmpfs.map(\.target)
        let perRunTargets = ["/proc", "/tmp", "/dev/shm", Self.box] + userTargets
        self.templated = templated && !userTargets.contains { target in
            perRunTargets.contains { $0 != target && (target.hasPrefix($0 + "/") || $0 == "/") }
        } && Set(userTargets).count == userTargets.count
        if self.templated {
            staging = nil
        } else {
            // Named after its owner, so a later Corral (its first isolated run, or `corral
            // cleanup`) can remove it if this one dies.
            StaleCgroups.removeStaleRootsOnce()
            let owner = CgroupOwner.current
            var template = Array("/tmp/corral-root-\(owner.pid)-\(owner.startTime)-XXXXXX".utf8CString)
            guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
                throw SetupFailure(stage: "filesystem", errno: errno, message: "mkdtemp /tmp/corral-root-XXXXXX: \(SetupFailure.describe(errno))")
            }
            staging = String(cString: made)
        }
        for top in ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"] {
            var info = stat()
            guard lstat(top, &info) == 0 else { continue }
            if (info.st_mode & S_IFMT) == S_IFLNK, let link = Self.readLink(top) {
                add(CORRAL_MOUNT_SYMLINK, source: link, target: top)
            } else if (info.st_mode & S_IFMT) == S_IFDIR {
                add(CORRAL_MOUNT_BIND_DIRECTORY, source: top, target: top)
            }
        }
        if access("/etc/ld.so.cache", F_OK) == 0 { add(CORRAL_MOUNT_BIND_FILE, source: "/etc/ld.so.cache", target: "/etc/ld.so.cache") }
        if access("/etc/alternatives", F_OK) == 0 { add(CORRAL_MOUNT_BIND_DIRECTORY, source: "/etc/alternatives", target: "/etc/alternatives") }
        // What runtimes read from /etc: the JDK's configuration (its conf/security files are
        // links into /etc/java-N-openjdk; javac fails without them), the time zone, and, with
        // the host's network, the public TLS roots.
        for entry in Self.runtimeConfiguration(network: isolation.network) {
            add(entry.directory ? CORRAL_MOUNT_BIND_DIRECTORY : CORRAL_MOUNT_BIND_FILE, source: entry.path, target: entry.path)
        }
        let identity = user
        var passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        var group = "root:x:0:\nnogroup:x:65534:\n"
        if ![0, 65534].contains(identity.uid) { passwd += "corral:x:\(identity.uid):\(identity.gid):corral:/box:/bin/sh\n" }
        if ![0, 65534].contains(identity.gid) { group += "corral:x:\(identity.gid):\n" }
        addFile("/etc/passwd", passwd)
        addFile("/etc/group", group)
        addFile("/etc/hostname", "corral\n")
        // The run's own loopback has a name; nothing else resolves (no resolv.conf).
        addFile("/etc/hosts", "127.0.0.1\tlocalhost corral\n::1\tlocalhost ip6-localhost ip6-loopback\n")
        add(CORRAL_MOUNT_PROC, source: nil, target: "/proc")
        let scratch = "size=\(limits.memory ?? Self.defaultScratchSize)"
        add(CORRAL_MOUNT_TMPFS, source: nil, target: "/dev", data: "mode=0755,size=64k")
        for device in ["null", "zero", "full", "random", "urandom"] {
            // Read-only: reading and writing a device is not changing the filesystem, but a
            // chmod of the host's /dev/null (by uid 0 inside) would be.
            add(CORRAL_MOUNT_BIND_FILE, source: "/dev/" + device, target: "/dev/" + device, writable: false, data: "dev")
        }
        add(CORRAL_MOUNT_SYMLINK, source: "/proc/self/fd", target: "/dev/fd")
        for (index, name) in ["stdin", "stdout", "stderr"].enumerated() {
            add(CORRAL_MOUNT_SYMLINK, source: "/proc/self/fd/\(index)", target: "/dev/" + name)
        }
        // POSIX shared memory and semaphores (sem_open, shm_open: Python's multiprocessing).
        add(CORRAL_MOUNT_TMPFS, source: nil, target: "/dev/shm", data: "mode=1777," + scratch)
        add(CORRAL_MOUNT_TMPFS, source: nil, target: "/tmp", data: "mode=1777," + scratch)
        if let workingDirectory {
            add(CORRAL_MOUNT_BIND_DIRECTORY, source: workingDirectory.path, sourceDescriptor: workingDirectory.descriptor,
                target: Self.box, writable: true)
        } else {
            add(CORRAL_MOUNT_TMPFS, source: nil, target: Self.box, data: "mode=1777," + scratch)
        }
        if identity.uid == 0 { maskKernelInterfaces() }
        // The init makes mount points by path while it still sees the host: never below /box,
        // whose contents a program of an earlier run may have written (a link there would
        // take the init anywhere).
        for target in isolation.binds.map(\.target) + isolation.tmpfs.map(\.target)
            where target == Self.box || target.hasPrefix(Self.box + "/") {
            removeStaging()
            throw SetupFailure(stage: "filesystem", errno: EINVAL, message: "a --bind or --tmpfs target below \(Self.box) is not allowed: \(target)")
        }
        for bind in isolation.binds {
            var info = stat()
            guard stat(bind.source, &info) == 0 else {
                removeStaging()
                throw SetupFailure(stage: "filesystem", errno: errno, message: "bind \(bind.source): \(SetupFailure.describe(errno))")
            }
            let kind = (info.st_mode & S_IFMT) == S_IFDIR ? CORRAL_MOUNT_BIND_DIRECTORY : CORRAL_MOUNT_BIND_FILE
            // Per run: a bind shows the host's directory as it is now (a template would keep
            // the mounts below it as they were, and hold them).
            add(kind, source: bind.source, target: bind.target, writable: bind.writable, perRun: true)
        }
        for tmpfs in isolation.tmpfs {
            add(CORRAL_MOUNT_TMPFS, source: nil, target: tmpfs.target, data: "mode=1777,size=\(tmpfs.size ?? limits.memory ?? Self.defaultScratchSize)")
        }
        if self.templated {
            template = try MountTemplates.template(key: templateKey(), mounts: templateMounts, runMounts: mounts)
        }
    }

    /// Whether an entry is the run's own rather than the template's: the kernel's view of
    /// this PID namespace (and its masks), the writable tmpfs mounts, what is bound from a
    /// descriptor. (`--bind` entries are the run's too: see ``add``'s `perRun`.)
    private static func isPerRun(_ kind: corral_mount_kind, target: String, sourceDescriptor: Int32) -> Bool {
        kind == CORRAL_MOUNT_PROC || kind == CORRAL_MOUNT_READ_ONLY || sourceDescriptor >= 0 || target.hasPrefix("/proc/")
            || (kind == CORRAL_MOUNT_TMPFS && target != "/dev")
    }

    /// The running executable's identity (device, inode, change time).
    private static let builder: String = {
        var info = stat()
        guard stat("/proc/self/exe", &info) == 0 else { return "unknown" }
        return "\(info.st_dev):\(info.st_ino):\(info.st_ctim.tv_sec).\(info.st_ctim.tv_nsec)"
    }()

    /// Everything the template's content depends on: every entry (kind, source, target,
    /// flags, options, content), each bound source's identity (device, inode, change time:
    /// a file replaced on the host, as `ldconfig` replaces `/etc/ld.so.cache`, makes a new
    /// template), the per-run mount points, and how Corral builds templates (the executable
    /// that builds them: another build of Corral makes its own, persisted ones included).
    /// Every field is written with its length first, so no two different sets of entries
    /// give the same key (a persisted template is found by this key's digest).
    private func templateKey() -> String {
        var key = "corral-mount-template 1 \(CorralVersion.string) \(Self.builder)\n"
        func field(_ value: String) { key += "\(value.utf8.count):\(value);" }
        for entry in templateMounts {
            let source = entry.source.map { entry.kind == Int32(CORRAL_MOUNT_FILE.rawValue)
                ? String(decoding: UnsafeRawBufferPointer(start: $0, count: Int(entry.length)), as: UTF8.self) : String(cString: $0) }
            field("\(entry.kind)")
            field("\(entry.writable)")
            field(String(cString: entry.target))
            field(entry.data.map { "+" + String(cString: $0) } ?? "-")
            field(source.map { "+" + $0 } ?? "-")
            if let source, entry.kind == Int32(CORRAL_MOUNT_BIND_DIRECTORY.rawValue) || entry.kind == Int32(CORRAL_MOUNT_BIND_FILE.rawValue) {
                var info = stat()
                field(stat(source, &info) == 0 ? "\(info.st_dev):\(info.st_ino):\(info.st_ctim.tv_sec).\(info.st_ctim.tv_nsec)" : "absent")
            }
            key += "\n"
        }
        for entry in mounts {
            field("run")
            field("\(entry.kind)")
            field(String(cString: entry.target))
            key += "\n"
        }
        return key
    }

    /// /etc entries runtimes need that exist on this host: `/etc/java-*` directories,
    /// `/etc/localtime`, and `/etc/ssl/certs` when there is a network to use them on. Looked
    /// up once per process, not on every spawn.
    static func runtimeConfiguration(network: Isolation.Network) -> [(path: String, directory: Bool)] {
        network == .host ? hostRuntimeConfiguration.common + hostRuntimeConfiguration.tls : hostRuntimeConfiguration.common
    }

    private static let hostRuntimeConfiguration: (common: [(path: String, directory: Bool)], tls: [(path: String, directory: Bool)]) = {
        func isDirectory(_ path: String) -> Bool {
            var info = stat()
            return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
        }
        var common = CgroupFS.entriesIncludingFiles(of: "/etc").filter { $0.hasPrefix("java-") && isDirectory("/etc/" + $0) }
            .sorted().map { ("/etc/" + $0, true) }
        var info = stat()
        // Usually a link into /usr/share/zoneinfo: bound as the file it names.
        if stat("/etc/localtime", &info) == 0, (info.st_mode & S_IFMT) == S_IFREG { common.append(("/etc/localtime", false)) }
        return (common, isDirectory("/etc/ssl/certs") ? [("/etc/ssl/certs", true)] : [])
    }()

    deinit {
        strings.forEach { free($0) }
        removeStaging()
    }

    /// The staging directory is empty on the host (the mounts live in the run's mount
    /// namespace); removed once the run is over.
    func removeStaging() {
        if let staging { rmdir(staging) }
    }

    private func keep(_ string: String) -> UnsafeMutablePointer<CChar> {
        let copy = strdup(string)!
        strings.append(copy)
        return copy
    }

    /// A program running as uid 0 (asked for) has no capabilities, but the kernel checks
    /// some of its interfaces by uid alone: `/proc/sys` (e.g. `kernel/core_pattern`, which
    /// runs a program on the host as root) and `/proc/sysrq-trigger` are writable by uid 0
    /// of the host's user namespace. As container runtimes do: `/proc/sys` and the other
    /// kernel directories read-only, and the files that reach the kernel masked.
    private func maskKernelInterfaces() {
        for directory in ["/proc/sys", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/acpi", "/proc/scsi"] where access(directory, F_OK) == 0 {
            add(CORRAL_MOUNT_READ_ONLY, source: directory, target: directory)
        }
        for file in ["/proc/sysrq-trigger", "/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/latency_stats",
                     "/proc/sched_debug", "/proc/kmsg", "/proc/kpagecount", "/proc/kpageflags", "/proc/kpagecgroup"]
            where access(file, F_OK) == 0 {
            // Bound from the new root's /dev/null: by its host path before pivot_root, or
            // inside the run's copy of a template.
            add(CORRAL_MOUNT_BIND_FILE, source: (staging ?? "") + "/dev/null", target: file, data: "dev")
        }
    }

    private func add(_ kind: corral_mount_kind, source: String?, sourceDescriptor: Int32 = -1, target: String,
                     writable: Bool = false, data: String? = nil, perRun: Bool = false) {
        let entry = corral_mount(
            kind: Int32(kind.rawValue), source: source.map { UnsafePointer(keep($0)) }, source_fd: sourceDescriptor,
            target: UnsafePointer(keep(target)), writable: writable ? 1 : 0, data: data.map { UnsafePointer(keep($0)) }, length: 0
        )
        if !templated || perRun || Self.isPerRun(kind, target: target, sourceDescriptor: sourceDescriptor) {
            mounts.append(entry)
        } else {
            templateMounts.append(entry)
        }
    }

    private func addFile(_ target: String, _ content: String) {
        let entry = corral_mount(
            kind: Int32(CORRAL_MOUNT_FILE.rawValue), source: UnsafePointer(keep(content)), source_fd: -1, target: UnsafePointer(keep(target)),
            writable: 0, data: nil, length: UInt(content.utf8.count)
        )
        if templated { templateMounts.append(entry) } else { mounts.append(entry) }
    }

    private static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
