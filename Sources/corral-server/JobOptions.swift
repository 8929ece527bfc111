import ArgumentParser
import Corral
import CorralCommandLine
import CorralServer
import Foundation
import Logging

/// The flags of how jobs run, shared by `corral serve` and `corral worker` (a worker has no
/// HTTP side, so its help shows only these): parallelism, ceilings, defaults, isolation, the
/// file store, the queue's lease and results, callbacks, containment, the shared queue.
struct JobOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Jobs run at once (default: the number of CPUs).", valueName: "n"))
    var parallelism: Int?

    @Option(name: .customLong("max-cpu-time"), help: ArgumentHelp("Ceiling of a process's CPU time; a job asking more gets 400.", valueName: "duration"))
    var maxCpuTime = "60s"

    @Option(name: .customLong("max-wall-time"), help: ArgumentHelp("Ceiling of a process's wall time.", valueName: "duration"))
    var maxWallTime = "300s"

    @Option(name: .customLong("max-memory"), help: ArgumentHelp("Ceiling of a process's memory.", valueName: "size"))
    var maxMemory = "8G"

    @Option(name: .customLong("max-output"), help: ArgumentHelp("Ceiling of limits.output and of every capture's and collected file's max.", valueName: "size"))
    var maxOutput = "64M"

    @Option(name: .customLong("max-processes"), help: ArgumentHelp("Ceiling of a process's processes limit.", valueName: "n"))
    var maxProcesses = "1024"

    @Option(name: .customLong("max-disk"), help: ArgumentHelp("Most a job may keep in its working directory, a tmpfs of that size (needs root); 'none': a plain directory.", valueName: "size"))
    var maxDisk = "1G"

    @Option(name: .customLong("file-store"), help: ArgumentHelp("The file store's directory (/v1/files, files[].fileId, collect[].store); 'none': no store.", valueName: "dir"))
    var fileStore = FileStore.defaultDirectory

    @Option(name: .customLong("file-store-max"), help: ArgumentHelp("Most the file store holds; past it the least recently used files no queued or running job uses are evicted, and an upload that cannot fit is refused (507).", valueName: "size"))
    var fileStoreMax = "1G"

    @Option(name: .customLong("file-store-max-file"), help: ArgumentHelp("Largest file the store takes (413 above it).", valueName: "size"))
    var fileStoreMaxFile = "256M"

    @Option(name: .customLong("file-store-copies-max"), help: ArgumentHelp("Most memory kept in sealed copies of stored inputs that programs which are not isolated read as stdin (least recently used go first; 0 keeps none: each run gets a copy of its own).", valueName: "size"))
    var fileStoreCopiesMax = "256M"

    @Option(name: .customLong("max-job-processes"), help: ArgumentHelp("Most entries in a job's processes (they run at once, in one slot).", valueName: "n"))
    var maxJobProcesses = 16

    @Option(name: .customLong("max-tests"), help: ArgumentHelp("Most tests in one step of a job of steps (each a run, one after another, in one slot).", valueName: "n"))
    var maxTests = StepsSpec.defaultMaxTestsPerStep

    @Option(name: .customLong("max-job-time"), help: ArgumentHelp("The longest a job may hold its slot by its own limits (its steps, and each test's processes and checker in turn, at their wall times); a job that could take longer gets 400.", valueName: "duration"))
    var maxJobTime = "1h"

    @Option(name: .customLong("default-cpu-time"), help: ArgumentHelp("CPU time of a process whose job does not say.", valueName: "duration"))
    var defaultCpuTime = "10s"

    @Option(name: .customLong("default-wall-time"), help: ArgumentHelp("Wall time of a process whose job does not say (default: 2 × its CPU time + 1 s, at most --max-wall-time).", valueName: "duration"))
    var defaultWallTime: String?

    @Option(name: .customLong("default-memory"), help: ArgumentHelp("Memory of a process whose job does not say.", valueName: "size"))
    var defaultMemory = "512M"

    @Option(name: .customLong("default-output"), help: ArgumentHelp("Output limit of a process whose job does not say.", valueName: "size"))
    var defaultOutput = "16M"

    @Option(name: .customLong("default-processes"), help: ArgumentHelp("Processes limit of a process whose job does not say.", valueName: "n"))
    var defaultProcesses = "64"

    @Option(name: .customLong("host-files"),
            help: ArgumentHelp("Let jobs read host files under this directory (files[].copy, an absolute stdin); repeatable. Without it a job names no host file.", valueName: "dir"))
    var hostFiles: [String] = []

    @Flag(name: .customLong("no-isolate"), help: "Run processes without isolation (it is on by default; where the host cannot isolate, the server refuses to start without this flag).")
    var noIsolate = false

    @Option(help: ArgumentHelp("The seccomp profile of isolated processes: default or none (where libseccomp cannot be loaded, the server refuses to start unless none).", valueName: "profile"))
    var seccomp = "default"

    @Flag(name: .customLong("allow-host-network"), help: "Let a job ask for \"network\": \"host\" (refused with 400 otherwise).")
    var allowHostNetwork = false

    @Option(name: .customLong("shutdown-grace"), help: ArgumentHelp("On SIGTERM/SIGINT, how long running jobs may go on before they are killed (0: at once).", valueName: "duration"))
    var shutdownGrace = "10s"

    @Option(name: .customLong("result-ttl"), help: ArgumentHelp("How long a finished or cancelled job of /v1/jobs stays readable, then it is removed.", valueName: "duration"))
    var resultTTL = "24h"

    @Option(help: ArgumentHelp("A queued job's lease: a worker that has not renewed it for this long loses the job, which runs again.", valueName: "duration"))
    var lease = "30s"

    @Option(name: .customLong("callback-allow"), help: ArgumentHelp("A host name, address or network (ADDRESS/PREFIX) job callbacks may go to; repeatable. None: callbacks are refused. Loopback, link-local and metadata addresses only when named here as addresses or networks.", valueName: "host|net"))
    var callbackAllow: [String] = []

    @Option(name: .customLong("callback-secret-file"), help: ArgumentHelp("The key of the callbacks' signature (X-Corral-Signature: sha256=HMAC-SHA256 of the body), read once from this file (chmod 600).", valueName: "file"))
    var callbackSecretFile: String?

    @Option(name: .customLong("callback-retry-delay"), help: ArgumentHelp("The delay before a failed callback's first retry; each next one doubles (6 attempts in all).", valueName: "duration"))
    var callbackRetryDelay = "1s"

    @Option(name: .customLong("callback-ca"), help: ArgumentHelp("PEM certificates (a private CA) trusted for https:// callbacks besides the system's trust store.", valueName: "file"))
    var callbackCA: String?

    @Option(name: .customLong("log-level"), help: ArgumentHelp("trace, debug, info, notice, warning, error or critical.", valueName: "level"))
    var logLevel: Logger.Level = .info

    @Option(help: ArgumentHelp("Pin each slot to a CPU of its own from this list (e.g. 0-3): slot k runs on the k-th CPU; --parallelism defaults to their number and may not exceed it. A job's own cpus must be within the list.", valueName: "list"))
    var cpus: String?

    @OptionGroup var containmentOptions: ContainmentOptions

    @OptionGroup var userRangeOption: UserRangeOption

    @OptionGroup var queueOption: QueueOption

    /// A configuration with these flags, and the HTTP side's defaults (`serve` sets its own).
    func configuration() throws -> ServerConfiguration {
        guard ["default", "none"].contains(seccomp) else { throw ValidationError("--seccomp: expected default or none, got '\(seccomp)'") }
        var cpuList: CPUList?
        if let cpus {
            do throws(CorralError) { cpuList = try CPUList(cpus) } catch { throw ValidationError("--" + error.message) }
        }
        var configuration = ServerConfiguration(
            parallelism: parallelism ?? cpuList?.cpus.count ?? ProcessInfo.processInfo.activeProcessorCount,
            ceilings: Ceilings(
                cpuTime: try Self.parse(maxCpuTime, "max-cpu-time", LimitValue.parseDuration),
                wallTime: try Self.parse(maxWallTime, "max-wall-time", LimitValue.parseDuration),
                memory: try Self.parse(maxMemory, "max-memory", LimitValue.parseSize),
                output: try Self.parse(maxOutput, "max-output", LimitValue.parseSize),
                processes: try Self.parse(maxProcesses, "max-processes", LimitValue.parseCount),
                jobProcesses: maxJobProcesses,
                stepTests: maxTests,
                jobTime: try Self.parse(maxJobTime, "max-job-time", LimitValue.parseDuration)),
            defaults: JobDefaults(
                cpuTime: try Self.parse(defaultCpuTime, "default-cpu-time", LimitValue.parseDuration),
                wallTime: try defaultWallTime.map { try Self.parse($0, "default-wall-time", LimitValue.parseDuration) },
                memory: try Self.parse(defaultMemory, "default-memory", LimitValue.parseSize),
                output: try Self.parse(defaultOutput, "default-output", LimitValue.parseSize),
                processes: try Self.parse(defaultProcesses, "default-processes", LimitValue.parseCount)),
            isolate: !noIsolate,
            seccomp: seccomp == "none" ? .none : .standard,
            allowHostNetwork: allowHostNetwork,
            hostSupport: Self.testHostSupport(containment: containmentOptions.configuration),
            shutdownGrace: shutdownGrace == "0" ? .zero : try Self.parse(shutdownGrace, "shutdown-grace", LimitValue.parseDuration),
            runner: try { var runner = containmentOptions.configuration; runner.userRange = try userRangeOption.range(); return runner }(),
            hostFiles: hostFiles,
            workdirLimit: maxDisk == "none" ? nil : try Self.parse(maxDisk, "max-disk", LimitValue.parseSize),
            fileStore: fileStore == "none" ? nil : FileStoreSettings(
                directory: fileStore.hasPrefix("/") ? fileStore : FileManager.default.currentDirectoryPath + "/" + fileStore,
                maxBytes: try Self.parse(fileStoreMax, "file-store-max", LimitValue.parseSize),
                maxFileBytes: try Self.parse(fileStoreMaxFile, "file-store-max-file", LimitValue.parseSize),
                sealedCopyBytes: fileStoreCopiesMax == "0" ? 0 : try Self.parse(fileStoreCopiesMax, "file-store-copies-max", LimitValue.parseSize)),
            resultTTL: try Self.parse(resultTTL, "result-ttl", LimitValue.parseDuration),
            lease: try Self.parse(lease, "lease", LimitValue.parseDuration),
            callbackAllow: callbackAllow,
            callbackSecret: try callbackSecretFile.map { file in
                do throws(ServerError) { return Array(try TokenFile.read(file, flag: "--callback-secret-file").utf8) } catch { throw ValidationError(error.description) }
            },
            callbackRetryDelay: try Self.parse(callbackRetryDelay, "callback-retry-delay", LimitValue.parseDuration),
            callbackCA: callbackCA.map { $0.hasPrefix("/") ? $0 : FileManager.default.currentDirectoryPath + "/" + $0 }
        )
        configuration.cpus = cpuList
        return configuration
    }

    /// Logging to stderr at `--log-level`, then the server (or worker) of `configuration`;
    /// its refusal as the command's error.
    func makeServer(_ configuration: ServerConfiguration) throws -> CorralServer {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        do throws(ServerError) {
            return try CorralServer(configuration: configuration, logger: Logger(label: "corral"))
        } catch {
            throw ValidationError(error.description)
        }
    }

    static func parse<T>(_ value: String, _ flag: String, _ parser: (String) throws(LimitParseError) -> T) throws -> T {
        do {
            return try parser(value)
        } catch {
            throw ValidationError("--\(flag): \(error.description)")
        }
    }

    /// For tests of the fail-closed start: `CORRAL_TEST_HOST_LACKS=isolation,seccomp` makes the
    /// server take the host as lacking what it names. It can only take away: a host that
    /// lacks something for real is found so by the probe whatever this says.
    static func testHostSupport(containment: RunnerConfiguration) -> HostSupport? {
        guard let lacks = ProcessInfo.processInfo.environment["CORRAL_TEST_HOST_LACKS"], !lacks.isEmpty else { return nil }
        let names = Set(lacks.split(separator: ",").map(String.init))
        var support = HostSupport.probe(configuration: containment)
        if names.contains("isolation") { support.isolation = false }
        if names.contains("seccomp") { support.seccomp = false }
        return support
    }
}
