#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The baseline: `/bin/true` started by a bare `posix_spawn` (stdin from /dev/null, a
/// one-variable environment, SIGPIPE at its default) and reaped by `wait4` on its pid. No
/// process group, no reaper thread, no report: what any program pays at the least to run a
/// child.
struct BareSpawn: ~Copyable {
    private let path: UnsafeMutablePointer<CChar>
    private let argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
    private let envp: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>

    init(program: String = "/bin/true", environment: [String] = ["PATH=/usr/bin:/bin"]) {
        path = strdup(program)!
        argv = Self.cArray([program])
        envp = Self.cArray(environment)
    }

    deinit {
        free(path)
        Self.freeCArray(argv)
        Self.freeCArray(envp)
    }

    /// Spawns and reaps the program once. Returns whether it exited with code 0.
    func run() -> Bool {
        var actions = posix_spawn_file_actions_t()
        guard posix_spawn_file_actions_init(&actions) == 0 else { return false }
        defer { posix_spawn_file_actions_destroy(&actions) }
        guard posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0) == 0 else { return false }

        // SIGPIPE back to its default, as Corral's child does (the bench ignores it).
        var attributes = posix_spawnattr_t()
        guard posix_spawnattr_init(&attributes) == 0 else { return false }
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        guard posix_spawnattr_setsigdefault(&attributes, &defaults) == 0,
              posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF)) == 0 else { return false }

        var pid: pid_t = 0
        guard posix_spawn(&pid, path, &actions, &attributes, argv, envp) == 0 else { return false }

        var status: Int32 = 0
        while wait4(pid, &status, 0, nil) < 0 {
            guard errno == EINTR else { return false }
        }
        // WIFEXITED(status) && WEXITSTATUS(status) == 0
        return status & 0x7f == 0 && (status >> 8) & 0xff == 0
    }

    private static func cArray(_ strings: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> {
        let array = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: strings.count + 1)
        for (index, string) in strings.enumerated() {
            array[index] = strdup(string)
        }
        array[strings.count] = nil
        return array
    }

    private static func freeCArray(_ array: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) {
        var index = 0
        while let string = array[index] {
            free(string)
            index += 1
        }
        array.deallocate()
    }
}
