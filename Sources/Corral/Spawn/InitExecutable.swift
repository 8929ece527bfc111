import CCorral
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The `corral-init` executable an isolated run's vfork-style spawn execs as PID 1 of its
/// namespaces (see ``RunnerConfiguration/initExecutable``). It runs as root, so it is opened
/// once, checked, and from then on executed through that descriptor only: a regular file
/// owned by root (or Corral's own user) that neither group nor others can write, in
/// directories (every one from `/` down) of the same kind or sticky (`/tmp`), reached
/// without following a symbolic link. Anything else is refused, so nobody can put a program of theirs there.
enum InitExecutable {
    /// The file name looked for next to the running executable.
    static let name = "corral-init"

    /// What was found: a descriptor to exec (kept open for the process's lifetime), none
    /// (the default place holds no `corral-init`: the fork-style init is used), or a refusal.
    enum Found: Sendable {
        case executable(Int32)
        case absent
        case refused(SetupFailure)
    }

    private static let cache = Mutex<[String: Found]>([:])

    /// `explicit`: a configured path (it must be there and pass); nil: next to the running
    /// executable (`/proc/self/exe`), where absence is not an error.
    static func find(explicit: String?) -> Found {
        let path: String
        if let explicit {
            path = explicit
        } else {
            guard let own = ownExecutable() else { return .absent }
            path = String(own[..<(own.lastIndex(of: "/") ?? own.startIndex)]) + "/" + name
        }
        if let known = cache.withLock({ $0[path] }) { return known }
        var found = open(path)
        if case .refused(let failure) = found, explicit == nil, failure.errno == ENOENT { found = .absent }
        return cache.withLock { cache in
            // Two threads may have opened it at once: one descriptor is kept.
            if let known = cache[path] {
                if case .executable(let fd) = found { _ = Glibc.close(fd) }
                return known
            }
            cache[path] = found
            return found
        }
    }

    private static func ownExecutable() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Walks from `/` to the file one component at a time (O_NOFOLLOW), checking each.
    private static func open(_ path: String) -> Found {
        func refuse(_ error: Int32, _ why: String) -> Found {
            .refused(SetupFailure(stage: "init", errno: error, message: "the init executable \(path): \(why)"))
        }
        guard path.hasPrefix("/") else { return refuse(EINVAL, "not an absolute path") }
        let components = path.split(separator: "/").map(String.init)
        guard let last = components.last, !components.contains(".."), !components.contains(".") else {
            return refuse(EINVAL, "not a plain absolute path")
        }
        var directory = Glibc.open("/", corral_o_path() | corral_o_directory() | O_CLOEXEC)
        guard directory >= 0 else { return refuse(errno, SetupFailure.describe(errno)) }
        defer { _ = Glibc.close(directory) }
        if let why = unsafeOwnerOrMode(directory, directory: true) { return refuse(EPERM, "/ \(why)") }
        for component in components.dropLast() {
            let next = openat(directory, component, corral_o_path() | corral_o_directory() | O_NOFOLLOW | O_CLOEXEC)
            guard next >= 0 else { return refuse(errno, "\(component): \(SetupFailure.describe(errno))") }
            _ = Glibc.close(directory)
            directory = next
            if let why = unsafeOwnerOrMode(directory, directory: true) { return refuse(EPERM, "the directory \(component) \(why)") }
        }
        let fd = openat(directory, last, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return refuse(errno, SetupFailure.describe(errno)) }
        if let why = unsafeOwnerOrMode(fd, directory: false) {
            _ = Glibc.close(fd)
            return refuse(EPERM, why)
        }
        return .executable(fd)
    }

    /// Why the object is not safe for root to execute from, or nil.
    private static func unsafeOwnerOrMode(_ fd: Int32, directory: Bool) -> String? {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return "cannot be checked: \(SetupFailure.describe(errno))" }
        let type = info.st_mode & S_IFMT
        if directory ? type != S_IFDIR : type != S_IFREG { return directory ? "is not a directory" : "is not a regular file" }
        if info.st_uid != 0 && info.st_uid != geteuid() { return "is owned by uid \(info.st_uid), not root or Corral's user" }
        // A sticky directory (/tmp) lets others add names but not rename or remove ours.
        let sticky = directory && info.st_mode & S_ISVTX != 0
        if !sticky && info.st_mode & (S_IWGRP | S_IWOTH) != 0 {
            return "is writable by its group or others (mode \(String(info.st_mode & 0o7777, radix: 8)))"
        }
        if !directory && info.st_mode & S_IXUSR == 0 { return "is not executable" }
        return nil
    }
}
