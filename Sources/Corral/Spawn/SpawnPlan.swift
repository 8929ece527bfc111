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

    private init(job: Job, path: String, mappings: [corral_fd_mapping], outputFiles: [Int32], captures: [Capture],
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

    /// An inherited stdout/stderr that is a regular file, under an output limit: the program
    /// writes to a pipe and the reaper copies the first `limit` bytes to the file. RLIMIT_FSIZE
    /// cannot do it: it bounds a file's size, not what this run adds to it, so a file that
    /// already held more (a log appended to with `>>`) would refuse the first byte, and a
    /// fresh one would keep limit + 1 bytes from a process the verdict never hears of.
    struct Relay {
        let capture: Capture
        let writeEnd: Int32
        let targets: [Int32]
    }

    /// Also: a terminal that is Corral's own stdout or stderr is never handed to the program
    /// (it could read the user's keystrokes from it and change its settings): the program
    /// writes to a pipe that the reaper copies to the terminal, with no limit (the output
    /// limit counts files, not terminals). Only Corral's own streams are relayed: a
    /// descriptor a job gives (a pipe, a stream file) goes to the program as it is.
    private static func relays(for job: Job, given: Set<Int32>) -> Result<[Relay], SetupFailure> {
        func inheritedFile(_ target: Int32, _ output: Output) -> Bool {
            guard case .inherit = output.storage, !given.contains(target) else { return false }
            if isatty(target) == 1 { return true }
            var info = stat()
            return job.limits.output != nil && fstat(target, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
        }
        // One open file (kcmp), or where the kernel cannot tell, one file.
        func sameFile(_ first: Int32, _ second: Int32) -> Bool {
            let answer = corral_same_open_file(first, second)
            if answer >= 0 { return answer == 1 }
            var one = stat(), two = stat()
            return fstat(first, &one) == 0 && fstat(second, &two) == 0 && one.st_dev == two.st_dev && one.st_ino == two.st_ino
        }
        var groups: [(name: String, targets: [Int32])] = []
        let out = inheritedFile(1, job.standardOutput), err = inheritedFile(2, job.standardError)
        if out && err && sameFile(1, 2) {
            // `>f 2>&1`: one stream, so the two stay in the order they were written.
            groups.append(("stdout and stderr", [1, 2]))
        } else {
            if out { groups.append(("stdout", [1])) }
            if err { groups.append(("stderr", [2])) }
        }
        func relayFailure(_ what: String, _ error: Int32) -> SetupFailure {
            SetupFailure(stage: "open", errno: error, message: "\(what): \(SetupFailure.describe(error))")
        }
        var made: [Relay] = []
        for group in groups {
            var ends: [Int32] = [-1, -1]
            if corral_pipe(&ends) != 0 {
                let error = errno
                for relay in made { Glibc.close(relay.writeEnd) }
                return .failure(relayFailure("pipe for \(group.name)", error))
            }
            let sink = fcntl(group.targets[0], F_DUPFD_CLOEXEC, 3)
            if sink < 0 {
                let error = errno
                Glibc.close(ends[0])
                Glibc.close(ends[1])
                for relay in made { Glibc.close(relay.writeEnd) }
                return .failure(relayFailure("dup of \(group.name)", error))
            }
            _ = fcntl(ends[0], F_SETFL, O_NONBLOCK)
            let limit = isatty(group.targets[0]) == 1 ? UInt64.max : job.limits.output ?? UInt64.max
            made.append(Relay(capture: Capture(stream: group.name, descriptor: ends[0], max: limit, sink: sink),
                              writeEnd: ends[1], targets: group.targets))
        }
        return .success(made)
    }

    /// Resolves the program, opens the stdio files, makes the capture pipes and the content
    /// files. `descriptors` are more of the child's descriptors (target → an open
    /// descriptor the plan takes over, e.g. a pipe end). A failure here is a setup error of
    /// the run, reported like one that happens in the child.
    static func make(_ job: Job, cgroup: (any RunCgroup)?, warnings: [String],
                     descriptors: [Int32: Int32] = [:], directory: Int32? = nil,
                     initExecutable: String? = nil) -> Result<SpawnPlan, SetupFailure> {
        var handedOver = Array(descriptors.values)
        // The working directory, held as a descriptor from here on: given (a job's, opened
        // beneath its directory) or opened now from the caller's path.
        var directoryDescriptor = directory ?? -1
        if directory == nil, let path = job.workingDirectory {
            directoryDescriptor = open(path, corral_o_path() | corral_o_directory() | O_CLOEXEC)
            if directoryDescriptor < 0 {
                let error = errno
                descriptors.values.forEach { _ = Glibc.close($0) }
                return .failure(SetupFailure(stage: "chdir", errno: error, message: "chdir \(path): \(SetupFailure.describe(error))"))
            }
        }
        defer { if directoryDescriptor >= 0 { _ = Glibc.close(directoryDescriptor) } }
        var kept: [Int32] = []
        var mappings: [corral_fd_mapping] = descriptors.map { corral_fd_mapping(source: $0.value, target: $0.key) }
        var outputFiles: [Int32] = []
        var captures: [Capture] = []
        func fail(_ failure: SetupFailure) -> Result<SpawnPlan, SetupFailure> {
            (handedOver + kept).forEach { _ = Glibc.close($0) }
            return .failure(failure)
        }
        func systemFailure(_ what: String, _ error: Int32) -> SetupFailure {
            SetupFailure(stage: "open", errno: error, message: "\(what): \(SetupFailure.describe(error))")
        }
        let resolved: String
        switch ProgramResolver.resolve(job.arguments[0], environment: job.environment) {
        case .success(let path): resolved = path
        case .failure(let failure): return fail(failure)
        }
        // Non-blocking, then blocking again: a FIFO with no one at the other end never holds
        // up the thread that prepares the run (a thread of the cooperative pool).
        func openFile(_ path: String, _ flags: Int32, _ name: String) -> Result<Int32, SetupFailure> {
            let fd = open(path, flags | O_CLOEXEC | O_NONBLOCK, 0o644)
            if fd < 0 { return .failure(systemFailure("open \(name) \(path)", errno)) }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
            return .success(fd)
        }
        switch job.standardInput.storage {
        case .inherit: break
        case .null, .file:
            let path: String
            if case .file(let file) = job.standardInput.storage { path = file } else { path = "/dev/null" }
            switch openFile(path, O_RDONLY, "stdin") {
            case .success(let fd):
                handedOver.append(fd)
                mappings.append(corral_fd_mapping(source: fd, target: 0))
            case .failure(let failure): return fail(failure)
            }
        case .content(let bytes):
            let fd = corral_memfd("corral-stdin")
            if fd < 0 { return fail(systemFailure("memfd_create for stdin content", errno)) }
            handedOver.append(fd)
            var written = 0
            while written < bytes.count {
                let count = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { return fail(systemFailure("writing stdin content", errno)) }
                written += count
            }
            if lseek(fd, 0, SEEK_SET) != 0 { return fail(systemFailure("lseek stdin content", errno)) }
            mappings.append(corral_fd_mapping(source: fd, target: 0))
        }
        var openedOutputs: [String: Int32] = [:]
        let relayed: [Relay]
        switch relays(for: job, given: Set(descriptors.keys)) {
        case .success(let made): relayed = made
        case .failure(let failure): return fail(failure)
        }
        for relay in relayed {
            captures.append(relay.capture)
            handedOver.append(relay.writeEnd)
            for target in relay.targets { mappings.append(corral_fd_mapping(source: relay.writeEnd, target: target)) }
        }
        for (target, output) in [(Int32(1), job.standardOutput), (Int32(2), job.standardError)] {
            let name = target == 1 ? "stdout" : "stderr"
            switch output.storage {
            case .inherit: break // as it is, or relayed (above)
            case .null:
                switch openFile("/dev/null", O_WRONLY, name) {
                case .success(let fd):
                    handedOver.append(fd)
                    mappings.append(corral_fd_mapping(source: fd, target: target))
                case .failure(let failure): return fail(failure)
                }
            case .file(let path):
                // The same file for both streams is one open file, as `>f 2>&1` would be.
                if let fd = openedOutputs[path] {
                    mappings.append(corral_fd_mapping(source: fd, target: target))
                    continue
                }
                switch openFile(path, O_WRONLY | O_CREAT | O_TRUNC, name) {
                case .success(let fd):
                    kept.append(fd)
                    mappings.append(corral_fd_mapping(source: fd, target: target))
                    openedOutputs[path] = fd
                    var info = stat()
                    if fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG {
                        outputFiles.append(fd)
                    }
                case .failure(let failure): return fail(failure)
                }
            case .capture(let max, let onLimit):
                var ends: [Int32] = [-1, -1]
                if corral_pipe(&ends) != 0 { return fail(systemFailure("pipe for \(name)", errno)) }
                _ = fcntl(ends[0], F_SETFL, O_NONBLOCK)
                captures.append(Capture(stream: name, descriptor: ends[0], max: max, onLimit: onLimit))
                handedOver.append(ends[1])
                mappings.append(corral_fd_mapping(source: ends[1], target: target))
            }
        }
        var statusChannel: (read: Int32, write: Int32)?
        let user = RunUser.of(job)
        if geteuid() != 0 && (user.uid != getuid() || user.gid != getgid()) {
            return fail(job.isolation != nil
                ? SetupFailure(stage: "namespaces", errno: EPERM,
                               message: "rootless isolation runs the program as the caller (uid \(getuid()), gid \(getgid())); another --user needs root")
                : SetupFailure(stage: "privileges", errno: EPERM,
                               message: "without root the program runs as the caller (uid \(getuid()), gid \(getgid())); another --user needs root"))
        }
        if job.isolation != nil {
            var ends: [Int32] = [-1, -1]
            if corral_status_channel(&ends) != 0 { return fail(systemFailure("socket for the init's status", errno)) }
            handedOver.append(ends[1])
            statusChannel = (ends[0], ends[1])
        }
        // As root an isolated run's init is corral-init where there is one (rootless: a copy
        // of Corral, which keeps the capabilities of its user namespace that an exec drops).
        var initDescriptor: Int32 = -1
        if job.isolation != nil, geteuid() == 0 {
            switch InitExecutable.find(explicit: initExecutable) {
            case .executable(let fd): initDescriptor = fd
            case .absent: break
            case .refused(let failure): return fail(failure)
            }
        }
        var seccomp: SeccompFilter?
        if let isolation = job.isolation {
            do {
                seccomp = try SeccompFilter.filter(for: isolation.seccomp)
            } catch {
                return fail(error)
            }
        }
        var filesystem: MinimalFilesystem?
        if let isolation = job.isolation, !isolation.hostFilesystem {
            do {
                filesystem = try MinimalFilesystem(isolation: isolation, user: user, limits: job.limits,
                                                   workingDirectory: directoryDescriptor >= 0 ? (job.workingDirectory ?? "", directoryDescriptor) : nil,
                                                   templated: initDescriptor >= 0)
            } catch {
                return fail(error)
            }
        }
        var warnings = warnings
        if let path = job.workingDirectory, directory == nil, directoryDescriptor >= 0,
           let warning = unwritableDirectoryWarning(path, directoryDescriptor, user) {
            warnings.append(warning)
        }
        let plan = SpawnPlan(job: job, path: resolved, mappings: mappings, outputFiles: outputFiles, captures: captures,
                             handedOver: handedOver, kept: kept, cgroup: cgroup, warnings: warnings, statusChannel: statusChannel,
                             filesystem: filesystem, seccomp: seccomp, directoryDescriptor: directoryDescriptor,
                             initDescriptor: initDescriptor)
        directoryDescriptor = -1 // the plan's now
        return .success(plan)
    }

    /// A directory the caller gave (`--dir`) that the program's user cannot write: Corral
    /// never changes the owner or mode of a directory it did not make, so it says so.
    private static func unwritableDirectoryWarning(_ path: String, _ descriptor: Int32, _ user: RunUser) -> String? {
        var info = stat()
        guard geteuid() == 0, user.uid != 0, fstat(descriptor, &info) == 0 else { return nil }
        let mode = info.st_mode
        let writable = info.st_uid == user.uid ? mode & S_IWUSR != 0 : info.st_gid == user.gid ? mode & S_IWGRP != 0 : mode & S_IWOTH != 0
        guard !writable else { return nil }
        return "the program runs as \(user) and cannot write to its working directory \(path) (owner \(info.st_uid):\(info.st_gid), mode \(String(mode & 0o7777, radix: 8))): "
            + "make it writable to that user, or give --user"
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
