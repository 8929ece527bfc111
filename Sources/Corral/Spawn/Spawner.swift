import CCorral
#if canImport(Glibc)
import Glibc
#endif

/// A started main process.
struct SpawnedProcess: Sendable {
    let pid: Int32
    let pidfd: Int32
}

/// Bridges to the C shim: starts the child, closes the process-group race from the
/// parent's side, and turns a `{stage, errno}` report into a readable failure.
enum Spawner {
    enum Outcome {
        case started(SpawnedProcess)
        /// No child is left to reap (it was reaped here, or none was created).
        case failed(SetupFailure)
    }

    /// An isolated run whose init is still setting up (see ``startIsolated(_:)``).
    struct IsolatedSetup {
        let pid: Int32
        let pidfd: Int32
        /// Non-blocking; EOF once the program has exec'd, or a failure report.
        let descriptor: Int32
        var failure = corral_child_failure()
        var got = 0
    }

    enum IsolatedStart {
        case settingUp(IsolatedSetup)
        case failed(SetupFailure)
    }

    /// Starts an isolated run and returns at once; the caller watches the setup's descriptor
    /// and calls ``readSetup(_:plan:)`` when it is readable (or ``abandonSetup(_:plan:)``).
    static func startIsolated(_ plan: SpawnPlan) -> IsolatedStart {
        var result = corral_spawn_result()
        var descriptor: Int32 = -1
        // A network namespace made ahead of time, if one is ready: this run's alone, closed
        // here once the clone has it (or has failed). Without one the clone makes it.
        let network = plan.job.isolation?.network == Isolation.Network.none ? NamespacePool.shared.take() : nil
        let error = plan.withRequest(parent: getpid()) { request in
            corral_spawn_isolated_start_prepared(request, network ?? -1, &result, &descriptor)
        }
        if let network { close(network) }
        if error != 0 {
            return .failed(SetupFailure(stage: "spawn", errno: error, message: "clone: \(SetupFailure.describe(error))"))
        }
        _ = fcntl(descriptor, F_SETFL, O_NONBLOCK)
        return .settingUp(IsolatedSetup(pid: result.pid, pidfd: result.pidfd, descriptor: descriptor))
    }

    /// Reads the setup's outcome: nil while it goes on, else the outcome (the descriptor
    /// is closed, and a failed init reaped).
    static func readSetup(_ setup: inout IsolatedSetup, plan: SpawnPlan) -> Outcome? {
        var got = setup.got
        let complete = corral_isolated_setup_read(setup.descriptor, &setup.failure, &got)
        setup.got = got
        guard complete == 1 else { return nil }
        return finishSetup(setup, plan: plan, timedOut: false)
    }

    /// The setup took too long: its init is killed (the kernel takes the namespace with it).
    static func abandonSetup(_ setup: IsolatedSetup, plan: SpawnPlan) -> Outcome {
        _ = kill(setup.pid, SIGKILL)
        return finishSetup(setup, plan: plan, timedOut: true)
    }

    private static func finishSetup(_ setup: IsolatedSetup, plan: SpawnPlan, timedOut: Bool) -> Outcome {
        close(setup.descriptor)
        var result = corral_spawn_result()
        result.pid = setup.pid
        result.pidfd = setup.pidfd
        var failure = setup.failure
        corral_isolated_setup_finish(&result, &failure, setup.got, timedOut ? 1 : 0)
        let outcome = settle(result, plan: plan)
        if case .started(let process) = outcome, process.pidfd >= 0 {
            NamespaceRelease.shared.hold(initPidfd: process.pidfd)
        }
        return outcome
    }

    static func spawn(_ plan: SpawnPlan) -> Outcome {
        var result = corral_spawn_result()
        let parent = getpid()
        // On v2 the child is created inside the run's cgroup (no migration, see
        // corral_spawn_into_cgroup); on v1 it joins by writing `cgroup.procs`.
        let cgroupDirectory = plan.cgroup?.cloneDirectory ?? -1
        let error = plan.withRequest(parent: parent) { request in corral_spawn_into_cgroup(request, cgroupDirectory, &result) }
        if error != 0 {
            return .failed(SetupFailure(stage: "spawn", errno: error, message: "clone: \(SetupFailure.describe(error))"))
        }
        return settle(result, plan: plan)
    }

    /// After the setup: a failed child is reaped; a started one has its process group set
    /// from this side too.
    private static func settle(_ result: corral_spawn_result, plan: SpawnPlan) -> Outcome {
        let pid = result.pid
        if result.failure.stage != CORRAL_STAGE_NONE.rawValue {
            reapFailedChild(pid, pidfd: result.pidfd)
            return .failed(describe(result.failure, plan: plan))
        }
        // The child made itself a session leader; this closes the race from our side. The
        // only acceptable errors mean the child already did it: EPERM (it leads a session
        // now) or EACCES (it has exec'd).
        if setpgid(pid, pid) != 0 && errno != EPERM && errno != EACCES {
            let failure = errno
            _ = kill(pid, SIGKILL)
            reapFailedChild(pid, pidfd: result.pidfd)
            return .failed(SetupFailure(stage: "setpgid", errno: failure, message: "setpgid \(pid): \(SetupFailure.describe(failure))"))
        }
        return .started(SpawnedProcess(pid: pid, pidfd: result.pidfd))
    }

    private static func reapFailedChild(_ pid: Int32, pidfd: Int32) {
        _ = corral_wait4(pid, corral_wall())
        if pidfd >= 0 { close(pidfd) }
    }

    static func describe(_ failure: corral_child_failure, plan: SpawnPlan) -> SetupFailure {
        let error = failure.error
        let reason = SetupFailure.describe(error)
        let stage: String
        let message: String
        switch corral_spawn_stage(rawValue: UInt32(failure.stage)) {
        case CORRAL_STAGE_SETSID: (stage, message) = ("setsid", "setsid: \(reason)")
        case CORRAL_STAGE_SIGNALS: (stage, message) = ("signals", "setting the disposition of signal \(failure.detail): \(reason)")
        case CORRAL_STAGE_PDEATHSIG: (stage, message) = ("pdeathsig", "prctl(PR_SET_PDEATHSIG): \(reason)")
        case CORRAL_STAGE_CGROUP: (stage, message) = ("cgroup", "joining cgroup \(failure.detail): \(reason)")
        case CORRAL_STAGE_STDIO:
            let name = switch failure.detail {
            case 0: "stdin"
            case 1: "stdout"
            case 2: "stderr"
            case -1: "the error pipe"
            default: "descriptor \(failure.detail)"
            }
            (stage, message) = ("stdio", "setting up \(name): \(reason)")
        case CORRAL_STAGE_CHDIR:
            (stage, message) = ("chdir", "chdir \(plan.job.workingDirectory ?? ""): \(reason)")
        case CORRAL_STAGE_RLIMIT:
            let name = rlimitName(failure.detail)
            var text = "setrlimit \(name): \(reason)"
            var current = rlimit()
            if error == EPERM, getrlimit(__rlimit_resource_t(UInt32(failure.detail)), &current) == 0 {
                text += " (Corral's own hard limit is \(current.rlim_max == rlim_t(corral_rlim_infinity()) ? "unlimited" : String(current.rlim_max)), and it cannot raise it)"
            }
            (stage, message) = ("rlimit", text)
        case CORRAL_STAGE_CLOSE_FDS: (stage, message) = ("close-fds", "closing descriptors: \(reason)")
        case CORRAL_STAGE_NAMESPACES:
            let step = [1: "making mounts private", 2: "mounting /proc", 3: "sethostname", 4: "bringing the loopback up",
                        5: "denying setgroups in the user namespace", 6: "writing uid_map", 7: "writing gid_map",
                        8: "the isolated setup did not finish in 30 s and was killed",
                        9: "entering the prepared network namespace"][failure.detail] ?? "setting up namespaces"
            (stage, message) = ("namespaces", "\(step): \(reason)")
        case CORRAL_STAGE_FILESYSTEM:
            let step: String
            switch failure.detail {
            case -1: step = "mounting the new root"
            case -2: step = "pivot_root"
            case -3: step = "making the root read-only"
            default:
                let entry = plan.mountDescription(Int(failure.detail))
                step = "mounting \(entry)"
            }
            var why = reason
            if plan.mountsFromDescriptor(Int(failure.detail)), [ESTALE, ELOOP, ENOENT, ENOTDIR].contains(error) {
                why = "the directory was replaced or removed after Corral opened it (\(reason)); nothing was mounted"
            }
            (stage, message) = ("filesystem", "\(step): \(why)")
        case CORRAL_STAGE_AFFINITY:
            (stage, message) = ("cpus", "sched_setaffinity to CPUs \(plan.job.cpus?.description ?? "?"): \(reason)")
        case CORRAL_STAGE_SECCOMP: (stage, message) = ("seccomp", "installing the seccomp filter: \(reason)")
        case CORRAL_STAGE_INIT_START:
            let step = [1: "too many descriptors for corral-init", 2: "moving its descriptors", 3: "placing its descriptors",
                        4: "closing Corral's other descriptors", 5: "execveat corral-init"][failure.detail] ?? "starting corral-init"
            (stage, message) = ("init", "\(step): \(reason)")
        case CORRAL_STAGE_INIT_PLAN:
            let step = [1: "fstat", 2: "a malformed plan", 3: "allocating", 4: "mmap", 5: "close"][failure.detail] ?? "reading"
            (stage, message) = ("init", "corral-init reading its plan (\(step)): \(reason)")
        case CORRAL_STAGE_INIT_FORK: (stage, message) = ("init", "the init could not start the program: \(reason)")
        case CORRAL_STAGE_PRIVILEGES:
            let step = [1: "setgroups", 2: "setresgid", 3: "setresuid", 4: "dropping capabilities", 5: "locking securebits", 6: "no_new_privs"][failure.detail] ?? "dropping privileges"
            (stage, message) = ("privileges", "\(step): \(reason)")
        case CORRAL_STAGE_EXEC:
            var text = "exec \(plan.path): \(reason)"
            var info = stat()
            if error == EACCES, stat(plan.path, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR {
                text += " (it is a directory)"
            } else if error == ENOENT, let isolation = plan.job.isolation, !isolation.hostFilesystem {
                // Resolved on the host, looked for in the sandbox's own filesystem.
                text += " (in the sandbox the host's files are only /usr, /bin, /sbin, /lib, /lib64, a few of /etc and "
                    + "the --bind mounts; /tmp is its own; the working directory is /box"
                    + (plan.job.workingDirectory == nil ? ", empty without --dir)" : ")")
            }
            (stage, message) = ("exec", text)
        default: (stage, message) = ("unknown", "child setup step \(failure.stage): \(reason)")
        }
        return SetupFailure(stage: stage, errno: error, message: message)
    }

    static func rlimitName(_ resource: Int32) -> String {
        switch UInt32(resource) {
        case RLIMIT_CPU.rawValue: "RLIMIT_CPU"
        case RLIMIT_AS.rawValue: "RLIMIT_AS"
        case RLIMIT_FSIZE.rawValue: "RLIMIT_FSIZE"
        case RLIMIT_NOFILE.rawValue: "RLIMIT_NOFILE"
        case RLIMIT_STACK.rawValue: "RLIMIT_STACK"
        case RLIMIT_CORE.rawValue: "RLIMIT_CORE"
        default: "resource \(resource)"
        }
    }
}
