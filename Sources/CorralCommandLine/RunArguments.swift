import ArgumentParser
import Corral
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// The flags of `corral run` as a plain value, however they were parsed (``RunCommand``
/// or ``RunFastPath``): validation, the job and the run all work from this.
public struct RunArguments: Sendable, Equatable {
    public var limitOptions = LimitArguments()
    public var containmentOptions = ContainmentArguments()
    public var userRangeOption = UserRangeArgument()
    public var stdin: String?
    public var stdout: String?
    public var stderr: String?
    public var dir: String?
    public var environment: [String] = []
    public var inheritEnvironment = false
    public var report: String?
    public var quiet = false
    public var isolate = false
    public var network: Isolation.Network?
    public var user: String?
    public var bind: [String] = []
    public var tmpfs: [String] = []
    public var seccomp: String?
    public var seccompPolicy: String?
    public var spec: String?
    public var fileStore: String?
    public var fileStoreMax = "1G"
    public var stdoutMax: String?
    public var stderrMax: String?
    /// What a capture does past its cap: kill (the default) or truncate.
    public var stdoutOnLimit: String?
    public var stderrOnLimit: String?
    /// Signals the program starts with ignored, by name (`SIGPIPE`).
    public var ignoreSignals: [String] = []
    public var files: [String] = []
    public var collect: [String] = []
    /// `--cpus LIST`: the CPUs the run is pinned to.
    public var cpus: String?
    /// The program and its arguments, with the `--` before them when it was given.
    public var command: [String] = []

    public init() {}

    init(limitOptions: LimitArguments, containmentOptions: ContainmentArguments, userRangeOption: UserRangeArgument,
         stdin: String?, stdout: String?, stderr: String?, dir: String?, environment: [String], inheritEnvironment: Bool,
         report: String?, quiet: Bool, isolate: Bool, network: Isolation.Network?, user: String?, bind: [String],
         tmpfs: [String], seccomp: String?, seccompPolicy: String?, spec: String?, fileStore: String?, fileStoreMax: String, stdoutMax: String?, stderrMax: String?,
         stdoutOnLimit: String?, stderrOnLimit: String?, ignoreSignals: [String],
         files: [String], collect: [String], cpus: String?, command: [String]) {
        self.limitOptions = limitOptions
        self.containmentOptions = containmentOptions
        self.userRangeOption = userRangeOption
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.dir = dir
        self.environment = environment
        self.inheritEnvironment = inheritEnvironment
        self.report = report
        self.quiet = quiet
        self.isolate = isolate
        self.network = network
        self.user = user
        self.bind = bind
        self.tmpfs = tmpfs
        self.seccomp = seccomp
        self.seccompPolicy = seccompPolicy
        self.spec = spec
        self.fileStore = fileStore
        self.fileStoreMax = fileStoreMax
        self.stdoutMax = stdoutMax
        self.stderrMax = stderrMax
        self.stdoutOnLimit = stdoutOnLimit
        self.stderrOnLimit = stderrOnLimit
        self.ignoreSignals = ignoreSignals
        self.files = files
        self.collect = collect
        self.cpus = cpus
        self.command = command
    }
}

extension RunArguments {
    /// How runs are contained, and whose uids they get.
    func runnerConfiguration() throws -> RunnerConfiguration {
        var configuration = containmentOptions.configuration
        configuration.userRange = try userRangeOption.range()
        if configuration.userRange != nil && user != nil {
            throw ValidationError("--user-range and --user: give one")
        }
        return configuration
    }

    private var programArguments: [String] {
        command.first == "--" ? Array(command.dropFirst()) : command
    }

    public func validate() throws {
        // Everything from the first word ArgumentParser does not know is captured as the
        // program; a word with a dash there is a mistyped option or a request for help,
        // never a program (a program named so comes after --).
        if let first = command.first, first != "--", first.count > 1, first.hasPrefix("-") {
            if first == "--help" || first == "-h" { throw CleanExit.helpRequest(RunCommand.self) }
            throw ValidationError("unknown option '\(first)' (see corral run --help; the program and its arguments come after --)")
        }
        if fileStore != nil && spec == nil { throw ValidationError("--file-store goes with --spec") }
        _ = try cpuList()
        if spec != nil {
            if !programArguments.isEmpty { throw ValidationError("--spec: the program comes from the spec; give no program on the command line") }
            let conflicting = [("--stdin", stdin), ("--stdout", stdout), ("--stderr", stderr), ("--dir", dir),
                               ("--stdout-max", stdoutMax), ("--stderr-max", stderrMax), ("--stdout-on-limit", stdoutOnLimit),
                               ("--stderr-on-limit", stderrOnLimit)].filter { $0.1 != nil }.map(\.0)
                + (ignoreSignals.isEmpty ? [] : ["--ignore-signal"])
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
        _ = try captureActions()
        _ = try ignoredSignals()
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

    /// `--cpus`, parsed and checked against the CPUs that are online and Corral's own.
    func cpuList() throws -> CPUList? {
        guard let cpus else { return nil }
        do throws(CorralError) {
            let list = try CPUList(cpus)
            try list.checkAvailable()
            return list
        } catch {
            throw ValidationError("--" + error.message)
        }
    }

    func captureSizes() throws -> (stdout: UInt64?, stderr: UInt64?) {
        func parse(_ value: String?, _ flag: String) throws -> UInt64? {
            guard let value else { return nil }
            do { return try LimitValue.parseSize(value) } catch { throw ValidationError("--\(flag): \(error.description)") }
        }
        return (try parse(stdoutMax, "stdout-max"), try parse(stderrMax, "stderr-max"))
    }

    /// `--stdout-on-limit`, `--stderr-on-limit`: only for a stream that is captured (by its
    /// `-max`, or by default with `--file` / `--collect`).
    func captureActions() throws -> (stdout: OutputLimitAction, stderr: OutputLimitAction) {
        let sizes = try captureSizes()
        let job = !files.isEmpty || !collect.isEmpty
        func parse(_ value: String?, _ stream: String, captured: Bool) throws -> OutputLimitAction {
            guard let value else { return .kill }
            guard let action = OutputLimitAction(rawValue: value) else {
                throw ValidationError("--\(stream)-on-limit: expected kill or truncate, got '\(value)'")
            }
            guard captured else { throw ValidationError("--\(stream)-on-limit goes with --\(stream)-max (a captured \(stream))") }
            return action
        }
        return (try parse(stdoutOnLimit, "stdout", captured: sizes.stdout != nil || (job && stdout == nil)),
                try parse(stderrOnLimit, "stderr", captured: sizes.stderr != nil || (job && stderr == nil)))
    }

    func ignoredSignals() throws -> SignalSet {
        do { return try SignalSet(names: ignoreSignals) } catch { throw ValidationError("--ignore-signal: \(error.description)") }
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
            let text: String
            do { text = String(decoding: try HostFile.read(seccompPolicy), as: UTF8.self) } catch {
                throw ValidationError("--seccomp-policy: cannot read \(seccompPolicy): \(error)")
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
            standardOutput: try captureSizes().stdout.map { .capture(max: $0, onLimit: try captureActions().stdout) } ?? stdout.map { .file($0) } ?? .inherit,
            standardError: try captureSizes().stderr.map { .capture(max: $0, onLimit: try captureActions().stderr) } ?? stderr.map { .file($0) } ?? .inherit,
            limits: try limitOptions.limits(),
            isolation: try isolation(),
            user: try runUser(),
            ignoredSignals: try ignoredSignals(),
            cpus: try cpuList()
        )
    }

    /// `--file` and `--collect` make a one-process job in a private working directory:
    /// stdout and stderr are captured unless given as files.
    func singleProcessSpec() throws -> JobSpec {
        let job = try job()
        let cwd = FileManager.default.currentDirectoryPath
        func absolute(_ path: String) -> String { path.hasPrefix("/") ? path : cwd + "/" + path }
        func stream(_ path: String?, _ max: UInt64?, _ onLimit: OutputLimitAction) -> StreamSpec {
            if let max { return .capture(max: max, onLimit: onLimit) }
            if let path { return .hostFile(absolute(path)) }
            return .capture(max: StreamSpec.defaultCaptureMax, onLimit: onLimit)
        }
        func inside(_ text: String, _ flag: String) throws -> SpecPath {
            do { return try SpecPath(text) } catch { throw ValidationError("\(flag) \(text): \(error.description)") }
        }
        if dir != nil {
            throw ValidationError("--dir cannot be combined with --file or --collect: the program runs in a private working directory")
        }
        let sizes = try captureSizes()
        let actions = try captureActions()
        let process = ProcessSpec(
            name: "main", args: job.arguments, env: job.environment,
            limits: job.limits, stdin: stdin.map { .hostFile(absolute($0)) } ?? .null,
            stdout: stream(stdout, sizes.stdout, actions.stdout), stderr: stream(stderr, sizes.stderr, actions.stderr),
            isolation: job.isolation, user: job.user, ignoreSignals: job.ignoredSignals, cpus: job.cpus
        )
        let filesIn = try files.map { entry -> FileSpec in
            let parts = entry.split(separator: "=", maxSplits: 1)
            return FileSpec(path: try inside(String(parts[0]), "--file"), source: .copy(absolute(String(parts[1]))))
        }
        return JobSpec(processes: [process], files: filesIn, collect: try collect.map { CollectSpec(path: try inside($0, "--collect")) })
    }
}
