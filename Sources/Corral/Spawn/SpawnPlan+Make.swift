import CCorral
#if canImport(Glibc)
import Glibc
#endif

/// How a plan is made (``SpawnPlan/make(_:cgroup:warnings:descriptors:directory:initExecutable:)``):
/// the program resolved, the stdio files opened, the capture pipes and relays made, the
/// content files written, the isolation's mounts and filter prepared.
extension SpawnPlan {
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
}
