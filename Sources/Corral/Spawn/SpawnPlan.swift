import CCorral
#if canImport(Glibc)
import Glibc
#endif

/// Everything the child needs, in C memory, built by the parent before the clone (the
/// child allocates nothing). Owns the stdio descriptors it opened; ``close()`` releases
/// them once the run is over.
final class SpawnPlan: @unchecked Sendable {
    let job: Job
    let path: String
    private let pathC: UnsafeMutablePointer<CChar>
    private let argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
    private let envp: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
    private let directory: UnsafeMutablePointer<CChar>?
    private let rlimits: UnsafeMutablePointer<corral_rlimit>
    private let rlimitCount: Int
    /// Descriptors for the child's 0, 1, 2 (-1: Corral's own).
    let stdio: [Int32]
    /// Regular files Corral opened for stdout and stderr, checked against the output limit.
    let outputFiles: [Int32]
    private var ownedDescriptors: [Int32]
    /// The run's cgroup, which the child joins before exec; nil in process-group mode.
    let cgroup: (any RunCgroup)?
    let warnings: [String]

    private init(job: Job, path: String, stdio: [Int32], outputFiles: [Int32], owned: [Int32],
                 cgroup: (any RunCgroup)?, warnings: [String]) {
        self.job = job
        self.cgroup = cgroup
        self.warnings = warnings
        self.path = path
        self.stdio = stdio
        self.outputFiles = outputFiles
        self.ownedDescriptors = owned
        pathC = strdup(path)
        argv = SpawnPlan.cArray(job.arguments)
        envp = SpawnPlan.cArray(job.environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })
        directory = job.workingDirectory.map { strdup($0) }
        let limits = SpawnPlan.rlimits(for: job.limits, memoryInCgroup: cgroup != nil)
        rlimitCount = limits.count
        rlimits = .allocate(capacity: max(1, limits.count))
        rlimits.initialize(from: limits, count: limits.count)
    }

    deinit {
        close()
        free(pathC)
        SpawnPlan.freeCArray(argv)
        SpawnPlan.freeCArray(envp)
        free(directory)
        rlimits.deallocate()
    }

    /// Resolves the program and opens the stdio files. A failure here is a setup error
    /// of the run, reported like one that happens in the child.
    static func make(_ job: Job, cgroup: (any RunCgroup)?, warnings: [String]) -> Result<SpawnPlan, SetupFailure> {
        let resolved: String
        switch ProgramResolver.resolve(job.arguments[0], environment: job.environment) {
        case .success(let path): resolved = path
        case .failure(let failure): return .failure(failure)
        }
        var owned: [Int32] = []
        var stdio: [Int32] = [-1, -1, -1]
        var outputFiles: [Int32] = []
        func fail(_ failure: SetupFailure) -> Result<SpawnPlan, SetupFailure> {
            owned.forEach { _ = Glibc.close($0) }
            return .failure(failure)
        }
        func openFile(_ path: String, _ flags: Int32, _ name: String) -> Result<Int32, SetupFailure> {
            let fd = open(path, flags | O_CLOEXEC, 0o644)
            if fd < 0 {
                let error = errno
                return .failure(SetupFailure(stage: "open", errno: error, message: "open \(name) \(path): \(SetupFailure.describe(error))"))
            }
            owned.append(fd)
            return .success(fd)
        }
        switch job.standardInput.storage {
        case .inherit: break
        case .null:
            switch openFile("/dev/null", O_RDONLY, "stdin") {
            case .success(let fd): stdio[0] = fd
            case .failure(let failure): return fail(failure)
            }
        case .file(let path):
            switch openFile(path, O_RDONLY, "stdin") {
            case .success(let fd): stdio[0] = fd
            case .failure(let failure): return fail(failure)
            }
        }
        var openedOutputs: [String: Int32] = [:]
        for (index, output) in [(1, job.standardOutput), (2, job.standardError)] {
            let name = index == 1 ? "stdout" : "stderr"
            switch output.storage {
            case .inherit: break
            case .null:
                switch openFile("/dev/null", O_WRONLY, name) {
                case .success(let fd): stdio[index] = fd
                case .failure(let failure): return fail(failure)
                }
            case .file(let path):
                // The same file for both streams is one open file, as `>f 2>&1` would be.
                if let fd = openedOutputs[path] {
                    stdio[index] = fd
                    continue
                }
                switch openFile(path, O_WRONLY | O_CREAT | O_TRUNC, name) {
                case .success(let fd):
                    stdio[index] = fd
                    openedOutputs[path] = fd
                    var info = stat()
                    if fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG {
                        outputFiles.append(fd)
                    }
                case .failure(let failure): return fail(failure)
                }
            }
        }
        return .success(SpawnPlan(job: job, path: resolved, stdio: stdio, outputFiles: outputFiles, owned: owned,
                                  cgroup: cgroup, warnings: warnings))
    }

    /// Calls `body` with the C request; valid only during the call.
    func withRequest<R>(parent: pid_t, _ body: (UnsafePointer<corral_spawn_request>) -> R) -> R {
        var request = corral_spawn_request()
        request.path = UnsafePointer(pathC)
        request.argv = UnsafePointer(argv)
        request.envp = UnsafePointer(envp)
        request.directory = directory.map { UnsafePointer($0) }
        request.stdio = (stdio[0], stdio[1], stdio[2])
        request.rlimits = UnsafePointer(rlimits)
        request.rlimit_count = Int32(rlimitCount)
        request.parent_pid = parent
        let joins = cgroup?.joinDescriptors ?? []
        return joins.withUnsafeBufferPointer { buffer in
            request.cgroup_procs_fds = buffer.baseAddress
            request.cgroup_procs_count = Int32(buffer.count)
            return body(&request)
        }
    }

    func close() {
        for fd in ownedDescriptors { _ = Glibc.close(fd) }
        ownedDescriptors = []
    }

    /// The rlimits a job's limits turn into. Core dumps are always off.
    /// `memoryInCgroup`: the memory limit is the cgroup's; otherwise it becomes RLIMIT_AS.
    static func rlimits(for limits: Limits, memoryInCgroup: Bool) -> [corral_rlimit] {
        var result: [corral_rlimit] = [corral_rlimit(resource: Int32(RLIMIT_CORE.rawValue), soft: 0, hard: 0)]
        if let cpu = limits.cpuTime {
            // A backstop for the sampling: SIGXCPU at the next whole second, SIGKILL one later.
            let soft = UInt64((cpu.seconds).rounded(.up))
            result.append(corral_rlimit(resource: Int32(RLIMIT_CPU.rawValue), soft: soft, hard: soft + 1))
        }
        if let space = limits.addressSpace ?? (memoryInCgroup ? nil : limits.memory) {
            result.append(corral_rlimit(resource: Int32(RLIMIT_AS.rawValue), soft: space, hard: space))
        }
        if let output = limits.output {
            // One byte of slack tells an attempt to pass the limit from a file of exactly the
            // limit; Corral cuts its own stdout and stderr files back to the limit.
            result.append(corral_rlimit(resource: Int32(RLIMIT_FSIZE.rawValue), soft: output + 1, hard: output + 1))
        }
        if let files = limits.openFiles {
            result.append(corral_rlimit(resource: Int32(RLIMIT_NOFILE.rawValue), soft: files, hard: files))
        }
        if let stack = limits.stack {
            result.append(corral_rlimit(resource: Int32(RLIMIT_STACK.rawValue), soft: stack, hard: stack))
        }
        return result
    }

    private static func cArray(_ strings: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> {
        let array = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: strings.count + 1)
        for (index, string) in strings.enumerated() { array[index] = strdup(string) }
        array[strings.count] = nil
        return array
    }

    private static func freeCArray(_ array: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) {
        var index = 0
        while let pointer = array[index] {
            free(pointer)
            index += 1
        }
        array.deallocate()
    }
}
