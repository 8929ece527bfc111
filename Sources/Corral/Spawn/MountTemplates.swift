import CCorral
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A mount namespace holding the read-only part of isolated runs' filesystem (see
/// `mount_template.c`): each run's init enters a private copy of it and adds only its own
/// mounts (`/proc`, `/tmp`, `/dev/shm`, `/box`, ...). The descriptor is closed when the last
/// plan using the template is gone.
final class MountTemplate: Sendable {
    let descriptor: Int32

    fileprivate init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    deinit {
        close(descriptor)
    }
}

/// The templates of this process, one per distinct read-only part (usually one: the same
/// host, user and network setting), made on first use.
enum MountTemplates {
    /// More distinct templates than this (many users, many bind sets) evict one.
    static let limit = 8
    private static let templates = Mutex<[String: MountTemplate]>([:])

    /// The template for `mounts` (the read-only part) with mount points for `runMounts`,
    /// made if there is none for `key` yet. `key` must name everything the template's
    /// content depends on (see ``MinimalFilesystem``).
    ///
    /// As root, a template is also persisted across processes (``TemplateStore``): one an
    /// earlier process made for the same key is entered rather than built again, and one
    /// built here is kept for the next process.
    static func template(key: String, mounts: [corral_mount], runMounts: [corral_mount]) throws(SetupFailure) -> MountTemplate {
        if let existing = templates.withLock({ $0[key] }) { return existing }
        let name = TemplateStore.name(of: key)
        let made: MountTemplate
        if let persisted = TemplateStore.open(name) {
            made = MountTemplate(descriptor: persisted)
        } else {
            made = try create(mounts: mounts, runMounts: runMounts)
            TemplateStore.save(name, descriptor: made.descriptor)
        }
        return templates.withLock { templates in
            if let raced = templates[key] { return raced }
            if templates.count >= limit, let victim = templates.keys.first { templates[victim] = nil }
            templates[key] = made
            return made
        }
    }

    /// Forgets every template (tests: a template made before a host change).
    static func removeAll() {
        templates.withLock { $0.removeAll() }
    }

    private static func create(mounts: [corral_mount], runMounts: [corral_mount]) throws(SetupFailure) -> MountTemplate {
        // Named as a run's staging directory, so that a later Corral removes it if this one
        // dies before it does; it stays empty on the host (the tmpfs is in the template's
        // namespace) and is removed at once.
        StaleCgroups.removeStaleRootsOnce()
        let owner = CgroupOwner.current
        var template = Array("/tmp/corral-root-\(owner.pid)-\(owner.startTime)-XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw SetupFailure(stage: "filesystem", errno: errno, message: "mkdtemp /tmp/corral-root-XXXXXX: \(SetupFailure.describe(errno))")
        }
        let staging = String(cString: made)
        defer { rmdir(staging) }
        var failure = corral_child_failure()
        let descriptor = mounts.withUnsafeBufferPointer { mountBuffer in
            runMounts.withUnsafeBufferPointer { runBuffer in
                corral_mount_template_create(staging, mountBuffer.baseAddress, Int32(mountBuffer.count),
                                             runBuffer.baseAddress, Int32(runBuffer.count), &failure)
            }
        }
        guard descriptor >= 0 else {
            let what: String
            switch failure.detail {
            case -1: what = "the root tmpfs"
            case -2: what = "pivot_root into it"
            case -3: what = "remounting it read-only"
            case -6: what = "a mount point for a per-run mount"
            case -7: what = "a mount namespace for it"
            case -8: what = "a descriptor table of its own"
            default:
                let index = Int(failure.detail)
                what = mounts.indices.contains(index) ? String(cString: mounts[index].target) : "entry \(index)"
            }
            throw SetupFailure(stage: "filesystem", errno: failure.error,
                               message: "building the sandbox's read-only filesystem (\(what)): \(SetupFailure.describe(failure.error))")
        }
        return MountTemplate(descriptor: descriptor)
    }
}
