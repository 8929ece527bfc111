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
    /// The affinity mask of ``Job/cpus`` (empty: not pinned).
    private let cpuMask: [UInt64]
    /// The child's descriptors: (source in Corral, target in the child).
    let mappings: [corral_fd_mapping]
    /// Regular files Corral opened for stdout and stderr, checked against the output limit.
    let outputFiles: [Int32]
    /// Streams captured into the report.
    let captures: [Capture]
    /// Descriptors only the child needs (pipe ends, content files): closed once it has them,
    /// so a reader sees EOF and a writer EPIPE as soon as the other side is gone.
    private var handedOver: [Int32]
    /// Descriptors kept until the run is over (the output files).
    private var kept: [Int32]
    /// The run's cgroup, which the child joins before exec; nil in process-group mode.
    let cgroup: (any RunCgroup)?
    let warnings: [String]
    /// For an isolated run: where the init writes the program's wait status.
    let statusChannel: Int32?
    private var isolation: corral_isolation?
    private let hostname: UnsafeMutablePointer<CChar>
    private let filesystem: MinimalFilesystem?
    private let seccomp: SeccompFilter?
    /// Where the child changes directory: the job's, or `/box` inside an isolated root.
    private let directoryOverride: UnsafeMutablePointer<CChar>?
    /// The working directory as an O_PATH descriptor (owned): a plain run's `fchdir`, an
    /// isolated run's `/box` mount source. Never resolved by path once opened.
    private var directoryDescriptor: Int32
    /// Who the program runs as.
    let user: RunUser

    /// Only ``make(_:cgroup:warnings:descriptors:directory:initExecutable:)`` makes a plan.
    init(job: Job, path: String, mappings: [corral_fd_mapping], outputFiles: [Int32], captures: [Capture],
         handedOver: [Int32], kept: [Int32], cgroup: (any RunCgroup)?, warnings: [String],
         statusChannel: (read: Int32, write: Int32)?, filesystem: MinimalFilesystem?, seccomp: SeccompFilter?,
         directoryDescriptor: Int32, initDescriptor: Int32) {
        self.job = job
        self.directoryDescriptor = directoryDescriptor
        user = RunUser.of(job)
        self.seccomp = seccomp
        self.statusChannel = statusChannel?.read
        self.filesystem = filesystem
        hostname = strdup("corral")
        directoryOverride = filesystem != nil ? strdup(MinimalFilesystem.box) : nil
        if let settings = job.isolation, let statusChannel {
            isolation = corral_isolation(new_network: settings.network == .none ? 1 : 0, new_user: geteuid() == 0 ? 0 : 1,
                                         uid: user.uid, gid: user.gid,
                                         status_fd: statusChannel.write, hostname: UnsafePointer(hostname),
                                         root: nil, mounts: nil, mount_count: 0,
                                         seccomp_length: seccomp?.length ?? 0, seccomp_filter: seccomp?.instructions,
                                         init_fd: initDescriptor, mount_template_fd: -1)
        }
        self.cgroup = cgroup
        self.warnings = warnings
        self.path = path
        self.mappings = mappings
        self.outputFiles = outputFiles
        self.captures = captures
        self.handedOver = handedOver
        self.kept = kept
        pathC = strdup(path)
        argv = SpawnPlan.cArray(job.arguments)
        envp = SpawnPlan.cArray(job.environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })
        directory = job.workingDirectory.map { strdup($0) }
        let limits = SpawnPlan.rlimits(for: job.limits, memoryInCgroup: cgroup != nil)
        rlimitCount = limits.count
        rlimits = .allocate(capacity: max(1, limits.count))
        rlimits.initialize(from: limits, count: limits.count)
        cpuMask = job.cpus?.mask ?? []
    }

    deinit {
        closeHandedOver()
        close()
        if directoryDescriptor >= 0 { _ = Glibc.close(directoryDescriptor) }
        if let statusChannel { _ = Glibc.close(statusChannel) }
        free(hostname)
        free(directoryOverride)
        free(pathC)
        SpawnPlan.freeCArray(argv)
        SpawnPlan.freeCArray(envp)
        free(directory)
        rlimits.deallocate()
    }

    /// Calls `body` with the C request; valid only during the call.
    func withRequest<R>(parent: pid_t, _ body: (UnsafePointer<corral_spawn_request>) -> R) -> R {
        var request = corral_spawn_request()
        request.path = UnsafePointer(pathC)
        request.argv = UnsafePointer(argv)
        request.envp = UnsafePointer(envp)
        request.directory = (directoryOverride ?? directory).map { UnsafePointer($0) }
        request.rlimits = UnsafePointer(rlimits)
        request.rlimit_count = Int32(rlimitCount)
        request.parent_pid = parent
        request.directory_fd = isolation == nil ? directoryDescriptor : -1
        // As root, a plain run becomes its user unless that is root itself (asked for).
        request.switch_user = isolation == nil && geteuid() == 0 && user.uid != 0 ? 1 : 0
        request.uid = user.uid
        request.gid = user.gid
        request.ignored_signals = job.ignoredSignals.mask
        let joins = cgroup?.joinDescriptors ?? []
        var settings = isolation ?? corral_isolation()
        let isolated = isolation != nil
        let mounts = filesystem?.mounts ?? []
        let root = filesystem?.staging.map { strdup($0)! }
        settings.mount_template_fd = filesystem?.template?.descriptor ?? -1
        defer { free(root) }
        return cpuMask.withUnsafeBufferPointer { maskBuffer in
        request.cpu_mask = maskBuffer.isEmpty ? nil : maskBuffer.baseAddress
        request.cpu_mask_words = Int32(maskBuffer.count)
        return joins.withUnsafeBufferPointer { joinBuffer in
            mappings.withUnsafeBufferPointer { mappingBuffer in
                mounts.withUnsafeBufferPointer { mountBuffer in
                settings.root = root.map { UnsafePointer($0) }
                settings.mounts = mountBuffer.baseAddress
                settings.mount_count = Int32(mountBuffer.count)
                return withUnsafePointer(to: &settings) { settingsPointer in
                    request.cgroup_procs_fds = joinBuffer.baseAddress
                    request.cgroup_procs_count = Int32(joinBuffer.count)
                    request.fds = mappingBuffer.baseAddress
                    request.fd_count = Int32(mappingBuffer.count)
                    request.isolation = isolated ? settingsPointer : nil
                    return body(&request)
                }
                }
            }
        }
        }
    }

    /// "TARGET (from SOURCE)" for the filesystem entry at `index`, for error messages.
    func mountDescription(_ index: Int) -> String {
        guard let mounts = filesystem?.mounts, mounts.indices.contains(index) else { return "entry \(index)" }
        let target = String(cString: mounts[index].target)
        let kind = corral_mount_kind(rawValue: UInt32(mounts[index].kind))
        if (kind == CORRAL_MOUNT_BIND_DIRECTORY || kind == CORRAL_MOUNT_BIND_FILE), let source = mounts[index].source {
            return "\(target) (from \(String(cString: source)))"
        }
        return target
    }

    /// Whether the filesystem entry at `index` is bound from a descriptor Corral opened.
    func mountsFromDescriptor(_ index: Int) -> Bool {
        guard let mounts = filesystem?.mounts, mounts.indices.contains(index) else { return false }
        return mounts[index].source_fd >= 0
    }

    /// Once the child has its descriptors.
    func closeHandedOver() {
        for fd in handedOver { _ = Glibc.close(fd) }
        handedOver = []
    }

    /// When the run is over.
    func close() {
        filesystem?.removeStaging()
        if directoryDescriptor >= 0 { _ = Glibc.close(directoryDescriptor) }
        directoryDescriptor = -1
        closeHandedOver()
        for fd in kept { _ = Glibc.close(fd) }
        kept = []
    }

    /// `memoryInCgroup`: the memory limit is the cgroup's; otherwise it becomes RLIMIT_AS.
    static func rlimits(for limits: Limits, memoryInCgroup: Bool) -> [corral_rlimit] {
        var result: [corral_rlimit] = [corral_rlimit(resource: Int32(RLIMIT_CORE.rawValue), soft: 0, hard: 0)]
        if let cpu = limits.cpuTime {
            // A backstop for when the sampling cannot see a process (or Corral is stopped), set
            // well above the limit: the kernel checks RLIMIT_CPU against tick-sampled time, which
            // on a busy virtual machine can run 20 % and more ahead of the exact time Corral
            // measures, and a run must not end as `cpu-time-limit` with less than its limit used.
            let soft = UInt64((cpu.seconds * 1.5).rounded(.up)) + 1
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
