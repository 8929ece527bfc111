import ArgumentParser
import Corral
import Dispatch
import Foundation

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a program under limits and report what happened.",
        discussion: """
        Exit code: the program's own when it exited; 128+N when a signal N that Corral did not \
        send ended it; 124 for any limit; 125 for Corral's own errors; 126 program not executable; \
        127 program not found; 130 cancelled (SIGINT, SIGTERM or SIGHUP to Corral).
        """
    )

    @OptionGroup var limitOptions: LimitOptions

    @OptionGroup var containmentOptions: ContainmentOptions

    @OptionGroup var userRangeOption: UserRangeOption

    /// How runs are contained, and whose uids they get.
    func runnerConfiguration() throws -> RunnerConfiguration {
        var configuration = containmentOptions.configuration
        configuration.userRange = try userRangeOption.range()
        if configuration.userRange != nil && user != nil {
            throw ValidationError("--user-range and --user: give one")
        }
        return configuration
    }

    @Option(help: ArgumentHelp("Standard input from this file (default /dev/null).", valueName: "file"))
    var stdin: String?

    @Option(help: ArgumentHelp("Standard output to this file, created or truncated (default: Corral's).", valueName: "file"))
    var stdout: String?

    @Option(help: ArgumentHelp("Standard error to this file, created or truncated (default: Corral's).", valueName: "file"))
    var stderr: String?

    @Option(help: ArgumentHelp("The program's working directory.", valueName: "dir"))
    var dir: String?

    @Option(name: .customLong("env"), help: ArgumentHelp("Set a variable (repeatable). The default environment is PATH=/usr/local/bin:/usr/bin:/bin only.", valueName: "K=V"))
    var environment: [String] = []

    @Flag(name: .customLong("inherit-env"), help: "Start from Corral's own environment instead of the clean default.")
    var inheritEnvironment = false

    @Option(help: ArgumentHelp("Write the JSON report here; '-' is stdout, allowed only with --stdout.", valueName: "file"))
    var report: String?

    @Flag(help: "No summary line on stderr.")
    var quiet = false

    @Flag(help: "Isolate the program: new PID, mount, IPC, UTS and network namespaces, Corral's init as PID 1, a fresh /proc, an unprivileged user, no capabilities, no_new_privs. Needs root.")
    var isolate = false

    @Option(help: ArgumentHelp("With --isolate: none (a loopback only, the default) or host.", valueName: "mode"))
    var network: Isolation.Network?

    @Option(help: ArgumentHelp("The program's user, isolated or not (as root the default is 65534:65534, nobody; 0 only when asked for; without root only the caller's).", valueName: "UID[:GID]"))
    var user: String?

    @Option(help: ArgumentHelp("With --isolate: make a host path visible inside (repeatable), read-only unless :rw.", valueName: "SRC[:DST][:rw]"))
    var bind: [String] = []

    @Option(help: ArgumentHelp("With --isolate: a private tmpfs inside (repeatable).", valueName: "DST[:SIZE]"))
    var tmpfs: [String] = []

    @Option(help: ArgumentHelp("With --isolate: the seccomp profile, default or none.", valueName: "profile"))
    var seccomp: String?

    @Option(name: .customLong("seccomp-policy"), help: ArgumentHelp("With --isolate: a seccomp policy file (allow, deny, errno N per syscall name; default ACTION).", valueName: "file"))
    var seccompPolicy: String?

    @Option(help: ArgumentHelp("Run a job spec (JSON) from this file, '-' for stdin; the job report goes to stdout unless --report.", valueName: "file"))
    var spec: String?

    @Option(name: .customLong("file-store"), help: ArgumentHelp("With --spec: the file store for files[].fileId and collect[].store (the server's is \(FileStore.defaultDirectory) by default).", valueName: "dir"))
    var fileStore: String?

    @Option(name: .customLong("file-store-max"), help: ArgumentHelp("With --file-store: the most the store may hold (least recently used files are evicted).", valueName: "size"))
    var fileStoreMax = "1G"

    @Option(name: .customLong("stdout-max"), parsing: .unconditional, help: ArgumentHelp("Capture stdout into the report, cut at this size (the program is killed past it).", valueName: "size"))
    var stdoutMax: String?

    @Option(name: .customLong("stderr-max"), parsing: .unconditional, help: ArgumentHelp("Capture stderr into the report, cut at this size.", valueName: "size"))
    var stderrMax: String?

    @Option(name: .customLong("file"), help: ArgumentHelp("Put the host file PATH into the job's working directory as NAME (repeatable); the program runs there.", valueName: "NAME=PATH"))
    var files: [String] = []

    @Option(name: .customLong("collect"), help: ArgumentHelp("Return this file of the working directory in the report (repeatable).", valueName: "NAME"))
    var collect: [String] = []

    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The program and its arguments (after --).", valueName: "program"))
    var command: [String] = []

    private var programArguments: [String] {
        command.first == "--" ? Array(command.dropFirst()) : command
    }

    func validate() throws {
        // Everything from the first word ArgumentParser does not know is captured as the
        // program; a word with a dash there is a mistyped option or a request for help,
        // never a program (a program named so comes after --).
        if let first = command.first, first != "--", first.count > 1, first.hasPrefix("-") {
            if first == "--help" || first == "-h" { throw CleanExit.helpRequest(self) }
            throw ValidationError("unknown option '\(first)' (see corral run --help; the program and its arguments come after --)")
        }
        if fileStore != nil && spec == nil { throw ValidationError("--file-store goes with --spec") }
        if spec != nil {
            if !programArguments.isEmpty { throw ValidationError("--spec: the program comes from the spec; give no program on the command line") }
            let conflicting = [("--stdin", stdin), ("--stdout", stdout), ("--stderr", stderr), ("--dir", dir),
                               ("--stdout-max", stdoutMax), ("--stderr-max", stderrMax)].filter { $0.1 != nil }.map(\.0)
                + (environment.isEmpty ? [] : ["--env"]) + (inheritEnvironment ? ["--inherit-env"] : [])
                + (files.isEmpty ? [] : ["--file"]) + (collect.isEmpty ? [] : ["--collect"])
                + (limitOptions.isEmpty ? [] : ["limit flags"])
            if let first = conflicting.first { throw ValidationError("--spec: cannot be combined with \(first) (put it in the spec)") }
            return
        }
        if programArguments.isEmpty {
            throw ValidationError("no program given (usage: corral run [options] -- program [arguments])")
        }
        if stdoutMax != nil && stdout != nil { throw ValidationError("--stdout-max: cannot be combined with --stdout") }
        if stderrMax != nil && stderr != nil { throw ValidationError("--stderr-max: cannot be combined with --stderr") }
        for entry in files where !entry.contains("=") || entry.hasPrefix("=") || entry.hasSuffix("=") {
            throw ValidationError("--file: expected NAME=PATH, got '\(entry)'")
        }
        _ = try captureSizes()
        if !isolate && (network != nil || !bind.isEmpty || !tmpfs.isEmpty || seccomp != nil || seccompPolicy != nil) {
            throw ValidationError("--network, --bind, --tmpfs, --seccomp and --seccomp-policy go with --isolate")
        }
        _ = try runUser()
        _ = try runnerConfiguration()
        if seccomp != nil && seccompPolicy != nil { throw ValidationError("--seccomp and --seccomp-policy: give one") }
        if let seccomp, !["default", "none"].contains(seccomp) { throw ValidationError("--seccomp: expected default or none, got '\(seccomp)'") }
        _ = try isolation()
        if report == "-" && stdout == nil && stdoutMax == nil && files.isEmpty && collect.isEmpty {
            throw ValidationError("--report -: allowed only with --stdout, so the program's output and the report do not mix")
        }
        for entry in environment where !entry.contains("=") || entry.hasPrefix("=") {
            throw ValidationError("--env: expected K=V, got '\(entry)'")
        }
        _ = try limitOptions.limits()
    }

    func captureSizes() throws -> (stdout: UInt64?, stderr: UInt64?) {
        func parse(_ value: String?, _ flag: String) throws -> UInt64? {
            guard let value else { return nil }
            do { return try LimitValue.parseSize(value) } catch { throw ValidationError("--\(flag): \(error.description)") }
        }
        return (try parse(stdoutMax, "stdout-max"), try parse(stderrMax, "stderr-max"))
    }

    func runUser() throws -> RunUser? {
        guard let user else { return nil }
        let parts = user.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard let uid = UInt32(parts[0]), parts.count == 1 || UInt32(parts[1]) != nil else {
            throw ValidationError("--user: expected UID or UID:GID as numbers, got '\(user)'")
        }
        return RunUser(uid: uid, gid: parts.count > 1 ? UInt32(parts[1])! : uid)
    }

    func isolation() throws -> Isolation? {
        guard isolate else { return nil }
        var settings = Isolation(network: network ?? .none)
        for entry in bind {
            var parts = entry.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            let writable = parts.count > 1 && parts.last == "rw"
            if writable || (parts.count > 1 && parts.last == "ro") { parts.removeLast() }
            guard (1...2).contains(parts.count), parts.allSatisfy({ $0.hasPrefix("/") && !$0.split(separator: "/").contains("..") }) else {
                throw ValidationError("--bind: expected SRC[:DST][:rw] with absolute paths, got '\(entry)'")
            }
            settings.binds.append(Isolation.Bind(source: parts[0], target: parts.count > 1 ? parts[1] : nil, writable: writable))
        }
        for entry in tmpfs {
            let parts = entry.split(separator: ":", maxSplits: 1).map(String.init)
            guard let target = parts.first, target.hasPrefix("/"), !target.split(separator: "/").contains("..") else {
                throw ValidationError("--tmpfs: expected an absolute DST[:SIZE], got '\(entry)'")
            }
            var size: UInt64?
            if parts.count > 1 {
                do { size = try LimitValue.parseSize(parts[1]) } catch { throw ValidationError("--tmpfs: \(error.description)") }
            }
            settings.tmpfs.append(Isolation.Tmpfs(target: target, size: size))
        }
        if seccomp == "none" { settings.seccomp = .none }
        if let seccompPolicy {
            guard let text = try? String(contentsOfFile: seccompPolicy, encoding: .utf8) else {
                throw ValidationError("--seccomp-policy: cannot read \(seccompPolicy)")
            }
            do { settings.seccomp = .policy(try SeccompPolicy.parse(text)) } catch {
                throw ValidationError("--seccomp-policy: \(seccompPolicy): \(error.description)")
            }
        }
        return settings
    }

    func job() throws -> Job {
        var variables = inheritEnvironment ? ProcessInfo.processInfo.environment : Job.defaultEnvironment
        for entry in environment {
            let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            variables[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        return Job(
            arguments: programArguments,
            environment: variables,
            workingDirectory: dir,
            standardInput: stdin.map { .file($0) } ?? .null,
            standardOutput: try captureSizes().stdout.map { .capture(max: $0) } ?? stdout.map { .file($0) } ?? .inherit,
            standardError: try captureSizes().stderr.map { .capture(max: $0) } ?? stderr.map { .file($0) } ?? .inherit,
            limits: try limitOptions.limits(),
            isolation: try isolation(),
            user: try runUser()
        )
    }

    /// `--file` and `--collect` make a one-process job in a private working directory:
    /// stdout and stderr are captured unless given as files.
    func singleProcessSpec() throws -> JobSpec {
        let job = try job()
        let cwd = FileManager.default.currentDirectoryPath
        func absolute(_ path: String) -> String { path.hasPrefix("/") ? path : cwd + "/" + path }
        func stream(_ path: String?, _ max: UInt64?) -> StreamSpec {
            if let max { return .capture(max: max) }
            if let path { return .hostFile(absolute(path)) }
            return .capture(max: StreamSpec.defaultCaptureMax)
        }
        func inside(_ text: String, _ flag: String) throws -> SpecPath {
            do { return try SpecPath(text) } catch { throw ValidationError("\(flag) \(text): \(error.description)") }
        }
        if dir != nil {
            throw ValidationError("--dir cannot be combined with --file or --collect: the program runs in a private working directory")
        }
        let sizes = try captureSizes()
        let process = ProcessSpec(
            name: "main", args: job.arguments, env: job.environment,
            limits: job.limits, stdin: stdin.map { .hostFile(absolute($0)) } ?? .null,
            stdout: stream(stdout, sizes.stdout), stderr: stream(stderr, sizes.stderr), isolation: job.isolation,
            user: job.user
        )
        let filesIn = try files.map { entry -> FileSpec in
            let parts = entry.split(separator: "=", maxSplits: 1)
            return FileSpec(path: try inside(String(parts[0]), "--file"), source: .copy(absolute(String(parts[1]))))
        }
        return JobSpec(processes: [process], files: filesIn, collect: try collect.map { CollectSpec(path: try inside($0, "--collect")) })
    }

    func run() async throws {
        if let source = spec {
            let data: Data
            do {
                data = source == "-" ? FileHandle.standardInput.readDataToEndOfFile() : try Data(contentsOf: URL(fileURLWithPath: source))
            } catch {
                throw ValidationError("--spec: cannot read \(source): \(error.localizedDescription)")
            }
            do {
                try await runJob(try JobSpec.parse(data))
            } catch let error as SpecError {
                throw ValidationError("--spec: \(error)")
            }
            return
        }
        if !files.isEmpty || !collect.isEmpty {
            return try await runJob(try singleProcessSpec())
        }
        let job = try job()
        let outcome = try await CancellableRun.run(job, configuration: try runnerConfiguration())
        let report: RunReport
        switch outcome {
        case .success(let value): report = value
        case .failure(let error):
            throw ValidationError(error.message)
        }
        for warning in report.warnings {
            StandardError.write("corral: warning: \(warning)\n")
        }
        if !quiet {
            StandardError.write(Summary.line(for: report))
        }
        if let destination = self.report {
            try JSONOutput.writeReport(report, to: destination)
        }
        throw ExitCode(report.commandExitCode)
    }
}

extension RunCommand {
    func runJob(_ spec: JobSpec) async throws {
        var store: FileStore?
        if let directory = fileStore {
            let maxBytes: UInt64
            do { maxBytes = try LimitValue.parseSize(fileStoreMax) } catch { throw ValidationError("--file-store-max: \(error)") }
            do throws(CorralError) {
                store = try FileStore(directory: directory.hasPrefix("/") ? directory : FileManager.default.currentDirectoryPath + "/" + directory,
                                      maxBytes: maxBytes)
            } catch {
                throw ValidationError("--file-store: \(error.message)")
            }
        }
        let runner = JobRunner(runner: Runner(configuration: try runnerConfiguration()), fileStore: store)
        let outcome = await CancellableRun.run { () async -> Result<JobReport, CorralError> in
            do throws(CorralError) { return .success(try await runner.run(spec)) } catch { return .failure(error) }
        }
        let job: JobReport
        switch outcome {
        case .success(let value): job = value
        case .failure(let error): throw ValidationError(error.message)
        }
        var warnings: Set<String> = []
        for process in job.processes {
            for warning in process.report.warnings where warnings.insert(warning).inserted {
                StandardError.write("corral: warning: \(warning)\n")
            }
            if !quiet { StandardError.write("\(process.name): " + Summary.line(for: process.report)) }
        }
        if let kept = job.workdir { StandardError.write("corral: working directory kept at \(kept)\n") }
        try JSONOutput.writeReport(job, to: report ?? "-")
        throw ExitCode(job.commandExitCode)
    }
}

/// Runs a job as a task that SIGINT, SIGTERM and SIGHUP cancel: the run is killed and
/// reaped, and its report still comes back.
enum CancellableRun {
    static func run(_ job: Job, configuration: RunnerConfiguration) async throws -> Result<RunReport, CorralError> {
        await run { () async -> Result<RunReport, CorralError> in
            do throws(CorralError) {
                return .success(try await Runner(configuration: configuration).run(job))
            } catch {
                return .failure(error)
            }
        }
    }

    static func run<T: Sendable>(_ body: @escaping @Sendable () async -> T) async -> T {
        let task = Task { await body() }
        var sources: [any DispatchSourceSignal] = []
        for signalNumber in [SIGINT, SIGTERM, SIGHUP] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { task.cancel() }
            source.resume()
            sources.append(source)
        }
        let result = await task.value
        sources.forEach { $0.cancel() }
        return result
    }
}

enum Summary {
    static func line(for report: RunReport) -> String {
        let cpu = String(format: "%.3f", report.cpuTime)
        let wall = String(format: "%.3f", report.wallTime)
        let memory = String(format: "%.1f", Double(report.memoryPeak) / 1_048_576)
        let noun = report.processes == 1 ? "process" : "processes"
        return "corral: \(report.status.rawValue): \(report.message) [cpu \(cpu) s, wall \(wall) s, memory \(memory) MiB, \(report.processes) \(noun)]\n"
    }
}
