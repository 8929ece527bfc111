import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A uid (and the gid of the same number) of ``RunnerConfiguration/userRange`` held by one
/// run while it goes on. Within a process a uid is leased once; across Corral processes
/// sharing a range, each lease also holds an exclusive `flock` on
/// `/run/corral-users/UID.lock` (root's), so two Corral processes never give one uid to two
/// runs at once. Released by ``release()`` (or when the last reference goes).
public final class UserLease: Sendable {
    public let user: RunUser
    private let lockDescriptor: Int32
    private let released = Atomic<Bool>(false)

    private static let leased = Mutex<Set<UInt32>>([])
    static let lockDirectory = "/run/corral-users"

    private init(uid: UInt32, lockDescriptor: Int32) {
        user = RunUser(uid: uid, gid: uid)
        self.lockDescriptor = lockDescriptor
    }

    deinit { release() }

    public func release() {
        guard !released.exchange(true, ordering: .relaxed) else { return }
        _ = close(lockDescriptor) // drops the flock
        _ = Self.leased.withLock { $0.remove(user.uid) }
    }

    /// A free uid of `range`, or an error when every one is in use (by this process or another).
    public static func acquire(_ range: ClosedRange<UInt32>) throws(CorralError) -> UserLease {
        guard geteuid() == 0 else { throw CorralError(.invalidJob, "a range of users needs root") }
        guard !range.contains(0) else { throw CorralError(.invalidJob, "the range of users must not hold uid 0") }
        if mkdir(lockDirectory, 0o700) != 0 && errno != EEXIST {
            throw CorralError(.system, "mkdir \(lockDirectory): \(SetupFailure.describe(errno))")
        }
        for uid in range {
            let mine = leased.withLock { taken in taken.insert(uid).inserted }
            guard mine else { continue }
            let fd = open("\(lockDirectory)/\(uid).lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
            if fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0 {
                return UserLease(uid: uid, lockDescriptor: fd)
            }
            if fd >= 0 { close(fd) }
            _ = leased.withLock { $0.remove(uid) }
        }
        throw CorralError(.system, "every user of the range \(range.lowerBound)-\(range.upperBound) is in use by a run")
    }
}
