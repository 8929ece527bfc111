import CCorral
#if canImport(Glibc)
import Glibc
#endif

/// Runs a ``JobSpec``: a private working directory with the job's files, the pipes
/// between the processes (connected directly: Corral never carries their bytes), every
/// process as a run of its own with its own limits, then the collected files.
///
/// A process that hits a limit is killed alone; its peers then see EOF or EPIPE on its
/// pipes, as they would in real life, and are bounded by their own limits. The job ends
/// when every process has ended. Cancelling the task cancels every process.
public struct JobRunner: Sendable {
    public let runner: Runner
    /// Bytes a job may keep in its working directory (a tmpfs of that size; needs root);
    /// nil: a plain directory, bounded only file by file by each process's output limit.
    public let workdirLimit: UInt64?

    public init(runner: Runner = Runner(), workdirLimit: UInt64? = nil) {
        self.runner = runner
        self.workdirLimit = workdirLimit
    }

    /// `stop` stops every process of the job from outside the calling task (``RunStop``);
    /// cancelling the task does the same.
    public func run(_ spec: JobSpec, stop: RunStop? = nil) async throws(CorralError) -> JobReport {
        let started = MonotonicClock.now()
        let workdir = try Workdir.create(keep: spec.workdir.keep, limit: spec.workdir.keep ? nil : workdirLimit)
        defer { if !spec.workdir.keep { workdir.remove() } }
        try workdir.put(spec.files)
        // An isolated program runs as its own user (nobody by default): it gets the directory.
        if geteuid() == 0, let isolation = spec.processes.lazy.compactMap(\.isolation).first {
            try workdir.hand(to: SpawnPlan.identity(for: isolation))
        }

        // Every pipe end goes to exactly one process, which closes it once its child has it.
        var pipes: [String: (read: Int32, write: Int32)] = [:]
        defer { for ends in pipes.values { _ = close(ends.read); _ = close(ends.write) } }
        for name in spec.pipes {
            var ends: [Int32] = [-1, -1]
            guard corral_pipe(&ends) == 0 else {
                throw CorralError(.system, "pipe for \"\(name)\": \(SetupFailure.describe(errno))")
            }
            pipes[name] = (ends[0], ends[1])
        }
        var prepared: [(Job, [Int32: Int32])] = []
        // Stream files inside the directory, opened before any process runs; each goes to its run.
        var opened: [Int32] = []
        defer { for fd in opened { _ = close(fd) } }
        for process in spec.processes {
            var descriptors: [Int32: Int32] = [:]
            var failure: CorralError?
            func openInside(_ path: String, output: Bool, as target: Int32) -> Bool {
                guard !path.hasPrefix("/") else { return false }
                do throws(CorralError) {
                    let fd = try workdir.openStream(path, output: output)
                    opened.append(fd)
                    descriptors[target] = fd
                } catch {
                    failure = failure ?? error
                }
                return true
            }
            func take(_ name: String, _ end: PipeEndSpec.End, as target: Int32) {
                guard let ends = pipes[name] else { return }
                if end == .read {
                    descriptors[target] = ends.read
                    pipes[name]!.read = -1
                } else {
                    descriptors[target] = ends.write
                    pipes[name]!.write = -1
                }
            }
            func input(_ stream: StreamSpec) -> Input {
                switch stream {
                case .null: return .null
                case .file(let path): return openInside(path, output: false, as: 0) ? .inherit : .file(path)
                case .content(let bytes): return .content(bytes: bytes)
                case .pipe(let name): take(name, .read, as: 0); return .inherit
                case .capture: return .null // refused by the parser
                }
            }
            func output(_ stream: StreamSpec, _ target: Int32) -> Output {
                switch stream {
                case .null: return .null
                case .file(let path):
                    // Both streams to one file share one open file, as `>f 2>&1` would.
                    if target == 2, case .file(let other) = process.stdout, other == path, let fd = descriptors[1] {
                        descriptors[2] = fd
                        return .inherit
                    }
                    return openInside(path, output: true, as: target) ? .inherit : .file(path)
                case .capture(let max): return .capture(max: max)
                case .pipe(let name): take(name, .write, as: target); return .inherit
                case .content: return .null // refused by the parser
                }
            }
            let job = Job(
                arguments: process.args,
                environment: process.env,
                workingDirectory: process.dir.map(workdir.resolve) ?? workdir.path,
                standardInput: input(process.stdin),
                standardOutput: output(process.stdout, 1),
                standardError: output(process.stderr, 2),
                limits: process.limits,
                isolation: process.isolation
            )
            for (fd, end) in process.fds { take(end.pipe, end.end, as: fd) }
            if let failure {
                let owned = Set(opened)
                for fd in descriptors.values where !owned.contains(fd) { _ = close(fd) }
                for (_, earlier) in prepared { for fd in earlier.values where !owned.contains(fd) { _ = close(fd) } }
                throw failure
            }
            // Each run closes what it is given; a descriptor given twice (stdout and stderr
            // to one file) is duplicated so that each has its own.
            if let out = descriptors[1], descriptors[2] == out {
                let copy = fcntl(out, F_DUPFD_CLOEXEC, 3)
                if copy < 0 { throw CorralError(.system, "dup: \(SetupFailure.describe(errno))") }
                opened.append(copy)
                descriptors[2] = copy
            }
            prepared.append((job, descriptors))
        }
        // The ends and files now belong to the processes' runs.
        pipes = [:]
        opened = []

        let runner = self.runner
        let outcomes = await withTaskGroup(of: (Int, Result<RunReport, CorralError>).self) { group in
            for (index, (job, descriptors)) in prepared.enumerated() {
                group.addTask {
                    do throws(CorralError) {
                        return (index, .success(try await runner.run(job, descriptors: descriptors, stop: stop)))
                    } catch {
                        return (index, .failure(error))
                    }
                }
            }
            var results: [(Int, Result<RunReport, CorralError>)] = []
            for await result in group { results.append(result) }
            return results.sorted { $0.0 < $1.0 }.map(\.1)
        }
        var reports: [NamedRunReport] = []
        let full = workdir.isFull
        for (process, outcome) in zip(spec.processes, outcomes) {
            var report = try outcome.get()
            if full, let limit = workdir.limit {
                report.warnings.append("the job's working directory filled up (limit \(LimitValue.describe(bytes: limit))): a write there failed with ENOSPC")
            }
            reports.append(NamedRunReport(name: process.name, report: report))
        }
        let files = spec.collect.map { workdir.collect($0) }
        let status = reports.first { $0.report.status != .ok }?.report.status ?? .ok
        return JobReport(status: status, processes: reports, files: files,
                         workdir: spec.workdir.keep ? workdir.path : nil,
                         wallTime: Double(MonotonicClock.now() - started) / 1e9)
    }
}
