import CCorral
#if canImport(Glibc)
import Glibc
#endif

/// Laying a job's working directory out: its directories, files, stream files and pipes.
extension JobLayout {
    /// `sources`: what `fromStep` files are taken from. `injected`: descriptors a process
    /// gets instead of its spec's streams (process index → target descriptor → an open
    /// descriptor, taken over: closed here on failure, else by the run). `readOnly`: files
    /// that stay root's and 0444 after the directories are handed to their users. `store`:
    /// where `fileId` files come from and `"store": true` collects go.
    static func prepare(_ spec: JobSpec, workdirLimit: UInt64?, workdirInodes: UInt64? = nil, userRange: ClosedRange<UInt32>?, sources: StepSources = .none,
                        injected: [Int: [Int32: Int32]] = [:], readOnly: [SpecPath] = [], store: FileStore? = nil,
                        workdir shared: Workdir? = nil) throws(CorralError) -> JobLayout {
        var injected = injected
        defer { injected.values.forEach { $0.values.forEach { _ = Glibc.close($0) } } }
        var spec = spec
        var leases: [UserLease] = []
        // Each process that names no user gets one of its own from the range.
        if let userRange, geteuid() == 0 {
            do throws(CorralError) {
                for index in spec.processes.indices where spec.processes[index].user == nil && spec.processes[index].isolation?.uid == nil {
                    let lease = try UserLease.acquire(userRange)
                    leases.append(lease)
                    spec.processes[index].user = lease.user
                }
            } catch {
                leases.forEach { $0.release() }
                throw error
            }
        }
        let workdir: Workdir
        do throws(CorralError) {
            if let shared {
                workdir = shared
            } else {
                workdir = try Workdir.create(keep: spec.workdir.keep, limit: spec.workdir.keep ? nil : workdirLimit, inodes: workdirInodes)
            }
        } catch {
            leases.forEach { $0.release() }
            throw error
        }
        var directories: [DirectoryHandle] = []
        var prepared: [PreparedProcess] = []
        var pipes = JobPipes()
        do throws(CorralError) {
            directories = try makeDirectories(spec, in: workdir, fresh: shared != nil)
            for (fileIndex, file) in spec.files.enumerated() {
                for (index, process) in spec.processes.enumerated() where file.process == nil || file.process == process.name {
                    if case .fromStep(let reference) = file.source {
                        let (fd, executable) = try sources.open(reference, field: "files[\(fileIndex)]")
                        defer { _ = Glibc.close(fd) }
                        try directories[index].putCopy(file.path, from: fd, executable: file.executable || executable, limit: workdir.limit)
                    } else if case .stored = file.source {
                        // Its directories now (handed over with the rest), the file after.
                        if let parent = file.path.parent { try directories[index].makeDirectory(parent).close() }
                    } else {
                        try directories[index].put(file, limit: workdir.limit)
                    }
                }
            }
            for (index, process) in spec.processes.enumerated() {
                if let dir = process.dir { try directories[index].makeDirectory(dir).close() }
            }
            // A program runs as its own user (nobody as root): it gets its directory.
            if geteuid() == 0 {
                for (index, process) in spec.processes.enumerated() {
                    let user = RunUser.of(Job(arguments: process.args, isolation: process.isolation, user: process.user))
                    if user.uid != 0 { try directories[index].hand(to: user) }
                    for path in readOnly where path.parent == nil {
                        // Only where the file was put (an interactor's directory, not its peers').
                        if fchownat(directories[index].descriptor, path.name, 0, 0, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT { continue }
                        guard fchownat(directories[index].descriptor, path.name, 0, 0, AT_SYMLINK_NOFOLLOW) == 0,
                              fchmodat(directories[index].descriptor, path.name, 0o444, 0) == 0 else {
                            throw CorralError(.system, "files: make \(path) read-only: \(SetupFailure.describe(errno))")
                        }
                    }
                }
            }
            // Stored files after the hand-over: they stay Corral's and read-only.
            let storeLinks = try placeStoredFiles(spec, directories: directories, store: store, limit: workdir.limit)
            try pipes.make(spec.pipes)
            for (index, process) in spec.processes.enumerated() {
                let given = injected.removeValue(forKey: index) ?? [:]
                prepared.append(try prepareProcess(process, index: index, directory: directories[index], workdir: workdir,
                                                   pipes: &pipes, injected: given, storeLinks: storeLinks))
            }
            pipes.closeAll() // ends no process named (a library's spec)
        } catch {
            prepared.forEach(Self.close)
            pipes.closeAll()
            directories.forEach { $0.close() }
            if shared != nil {
                for process in spec.processes {
                    if let name = try? SpecPath(process.name), name.components.count == 1 { Workdir.removeTree(workdir.path + "/" + name.name) }
                }
            } else if spec.workdir.keep {
                workdir.handle.close()
            } else {
                workdir.remove()
            }
            leases.forEach { $0.release() }
            throw error
        }
        return JobLayout(workdir: workdir, directories: directories, prepared: prepared, leases: leases, names: spec.processes.map(\.name),
                         store: store, ownsWorkdir: shared == nil)
    }

    /// One directory per process, named after it (0700). The job's directory itself stays
    /// root's and 0700 (as the caller made it): no one but Corral can reach a process's
    /// directory by path. A process enters its own through a descriptor (`fchdir`, or the
    /// bind of its `/box`), which needs no search permission on the job's directory.
    /// `fresh`: in a working directory shared by a step's tests, each directory must be new
    /// (nothing of an earlier test's is ever reused).
    private static func makeDirectories(_ spec: JobSpec, in workdir: Workdir, fresh: Bool) throws(CorralError) -> [DirectoryHandle] {
        var made: [DirectoryHandle] = []
        do throws(CorralError) {
            for process in spec.processes {
                guard let name = try? SpecPath(process.name), name.components.count == 1 else {
                    throw CorralError(.invalidJob, "processes: \"\(process.name)\" is not a process name (it names the process's directory)")
                }
                if fresh && mkdirat(workdir.handle.descriptor, name.name, 0o700) != 0 {
                    throw CorralError(.system, "mkdir the directory of process \(process.name): \(SetupFailure.describe(errno))")
                }
                made.append(try workdir.handle.makeDirectory(name, mode: 0o700))
            }
        } catch {
            made.forEach { $0.close() }
            throw error
        }
        return made
    }

    private static func prepareProcess(_ process: ProcessSpec, index: Int, directory: DirectoryHandle, workdir: Workdir,
                                       pipes: inout JobPipes, injected: [Int32: Int32], storeLinks: Set<FileIdentity>) throws(CorralError) -> PreparedProcess {
        var descriptors: [Int32: Int32] = [:]
        var owned: [Int32] = Array(injected.values)
        func stream(_ path: SpecPath, output: Bool, _ field: String) throws(CorralError) -> Int32 {
            let fd = try directory.openStream(path, output: output, field: "processes[\(index)].\(field)", storeLinks: storeLinks)
            owned.append(fd)
            return fd
        }
        do throws(CorralError) {
            var input = Input.null
            switch process.stdin {
            case .null, .capture: break // capture is refused by the parser
            case .file(let path): descriptors[0] = try stream(path, output: false, "stdin"); input = .inherit
            case .hostFile(let path): input = .file(path)
            case .content(let bytes): input = .content(bytes: bytes)
            case .pipe(let name): descriptors[0] = pipes.take(name, .read); input = .inherit
            }
            func output(_ spec: StreamSpec, _ target: Int32, _ field: String) throws(CorralError) -> Output {
                switch spec {
                case .null, .content: return .null // content is refused by the parser
                case .file(let path):
                    // Both streams to one file share one open file, as `>f 2>&1` would.
                    if target == 2, case .file(let other) = process.stdout, other == path, let out = descriptors[1] {
                        let copy = fcntl(out, F_DUPFD_CLOEXEC, 3)
                        guard copy >= 0 else { throw CorralError(.system, "dup: \(SetupFailure.describe(errno))") }
                        owned.append(copy)
                        descriptors[2] = copy
                    } else {
                        descriptors[target] = try stream(path, output: true, field)
                    }
                    return .inherit
                case .hostFile(let path): return .file(path)
                case .capture(let max, let onLimit): return .capture(max: max, onLimit: onLimit)
                case .pipe(let name): descriptors[target] = pipes.take(name, .write); return .inherit
                }
            }
            var standardOutput = try output(process.stdout, 1, "stdout")
            var standardError = try output(process.stderr, 2, "stderr")
            for (target, fd) in injected {
                descriptors[target] = fd
                switch target {
                case 0: input = .inherit
                case 1: standardOutput = .inherit
                case 2: standardError = .inherit
                default: break
                }
            }
            for (fd, end) in process.fds { descriptors[fd] = pipes.take(end.pipe, end.end) }
            let workingDirectory = try process.dir.map { dir throws(CorralError) in try directory.makeDirectory(dir) }
            let handle = workingDirectory ?? directory
            let opened = corral_openat_beneath(handle.descriptor, ".", corral_o_path() | corral_o_directory(), 0)
            let error = errno
            workingDirectory?.close()
            guard opened >= 0 else { throw CorralError(.system, "open \(process.dir?.description ?? "the working directory"): \(SetupFailure.describe(error))") }
            var path = workdir.path + "/" + process.name
            if let dir = process.dir { path += "/" + dir.description }
            let job = Job(arguments: process.args, environment: process.env, workingDirectory: path,
                          standardInput: input, standardOutput: standardOutput, standardError: standardError,
                          limits: process.limits, isolation: process.isolation, user: process.user,
                          ignoredSignals: process.ignoreSignals, cpus: process.cpus)
            return PreparedProcess(job: job, descriptors: descriptors, directory: opened)
        } catch {
            Set(owned).union(descriptors.values).forEach { _ = Glibc.close($0) }
            throw error
        }
    }
}
