import CCorral

/// A decoded `wait4` status.
enum WaitStatus: Sendable, Hashable {
    case exited(Int32)
    case signaled(Int32)
    case stopped(Int32)
    case continued

    init?(_ raw: Int32) {
        if corral_wifexited(raw) != 0 {
            self = .exited(corral_wexitstatus(raw))
        } else if corral_wifsignaled(raw) != 0 {
            self = .signaled(corral_wtermsig(raw))
        } else if corral_wifstopped(raw) != 0 {
            self = .stopped(corral_wstopsig(raw))
        } else if corral_wifcontinued(raw) != 0 {
            self = .continued
        } else {
            return nil
        }
    }

    var isTermination: Bool {
        switch self {
        case .exited, .signaled: true
        case .stopped, .continued: false
        }
    }
}
