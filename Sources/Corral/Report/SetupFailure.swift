import CCorral
#if canImport(Glibc)
import Glibc
#endif

/// Why the program could not be started: the step that failed, errno, and a sentence.
public struct SetupFailure: Error, Sendable, Hashable, Codable {
    /// The step: `resolve` (PATH search, in Corral), `open` (a stdio file, in Corral),
    /// `spawn` (clone itself), or a step of the child: `setsid`, `signals`, `pdeathsig`,
    /// `cgroup`, `stdio`, `chdir`, `rlimit`, `close-fds`, `exec`, `setpgid`.
    public var stage: String
    /// The errno value, and its symbolic name.
    public var errno: Int32
    public var errnoName: String
    /// One line, e.g. `exec ./a.out: No such file or directory`.
    public var message: String

    public init(stage: String, errno: Int32, message: String) {
        self.stage = stage
        self.errno = errno
        self.errnoName = SetupFailure.name(of: errno)
        self.message = message
    }

    /// True when the program does not exist (ENOENT at resolve or exec): exit 127.
    public var isNotFound: Bool {
        (stage == "exec" || stage == "resolve") && (errno == ENOENT || errno == ENOTDIR)
    }

    /// True when the program exists but cannot be executed: exit 126.
    public var isNotExecutable: Bool {
        (stage == "exec" || stage == "resolve") && [EACCES, ENOEXEC, EISDIR, EPERM, ETXTBSY].contains(errno)
    }

    static func describe(_ error: Int32) -> String {
        String(cString: strerror(error))
    }

    static func name(of error: Int32) -> String {
        let names: [Int32: String] = [
            EPERM: "EPERM", ENOENT: "ENOENT", ESRCH: "ESRCH", EINTR: "EINTR", EIO: "EIO", E2BIG: "E2BIG",
            ENOEXEC: "ENOEXEC", EBADF: "EBADF", EAGAIN: "EAGAIN", ENOMEM: "ENOMEM", EACCES: "EACCES",
            EFAULT: "EFAULT", EBUSY: "EBUSY", EEXIST: "EEXIST", ENOTDIR: "ENOTDIR", EISDIR: "EISDIR",
            EINVAL: "EINVAL", ENFILE: "ENFILE", EMFILE: "EMFILE", ETXTBSY: "ETXTBSY", EFBIG: "EFBIG",
            ENOSPC: "ENOSPC", EROFS: "EROFS", ELOOP: "ELOOP", ENAMETOOLONG: "ENAMETOOLONG", ENOSYS: "ENOSYS",
            ELIBBAD: "ELIBBAD",
        ]
        return names[error] ?? "E\(error)"
    }
}
