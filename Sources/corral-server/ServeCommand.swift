import ArgumentParser
import Corral
import CorralCommandLine
import CorralServer
import Foundation
import Logging

extension Logger.Level: @retroactive ExpressibleByArgument {}

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the HTTP API: POST /v1/run runs a job spec and answers with its report; POST /v1/jobs queues one.",
        discussion: """
        Prints "corral: listening on http://HOST:PORT" once the socket is bound. SIGTERM or \
        SIGINT shut it down gracefully: no new connection, waiting jobs refused (503), running \
        jobs given --shutdown-grace, then killed; exit 0 with nothing of any run left behind.
        """
    )

    @Option(help: "Address to bind. Anything but a loopback address needs --token.")
    var host = "127.0.0.1"

    @Option(help: "TCP port (0: any free port).")
    var port = 5050

    @Option(help: ArgumentHelp("Require 'Authorization: Bearer TOKEN' on every route but /v1/health (default: $CORRAL_TOKEN). Other processes can read it in /proc/PID/cmdline: prefer --token-file.", valueName: "token"))
    var token: String?

    @Option(name: .customLong("token-file"), help: ArgumentHelp("Read the token once at start from this file (one trailing newline dropped); only its owner may read it.", valueName: "file"))
    var tokenFile: String?

    @Option(help: ArgumentHelp("Jobs run at once (default: the number of CPUs).", valueName: "n"))
    var parallelism: Int?

    @Option(help: ArgumentHelp("Jobs that may wait for a slot; past that, 503 with Retry-After.", valueName: "n"))
    var queue = 64

    @Option(name: .customLong("max-body"), help: ArgumentHelp("Largest request body (413 above it).", valueName: "size"))
    var maxBody = "64M"

    @Option(name: .customLong("max-bodies-in-flight"), help: ArgumentHelp("Memory all request bodies being read, parsed or run may take together; past it 503 (413 for one body alone over it).", valueName: "size"))
    var maxBodiesInFlight = "256M"

    @Option(name: .customLong("max-connections"), help: ArgumentHelp("Connections open at once; one more is answered 503 and closed.", valueName: "n"))
    var maxConnections = 512

    @Option(name: .customLong("idle-timeout"), help: ArgumentHelp("Close a connection that has sent no request part for this long while waiting for or reading a request (a header must arrive within it).", valueName: "duration"))
    var idleTimeout = "30s"

    @Option(name: .customLong("body-timeout"), help: ArgumentHelp("Close a connection whose request body has not arrived within this long after its header.", valueName: "duration"))
    var bodyTimeout = "60s"

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

    @Option(name: .customLong("max-job-processes"), help: ArgumentHelp("Most entries in a job's processes (they run at once, in one slot).", valueName: "n"))
    var maxJobProcesses = 16

    @Option(name: .customLong("max-tests"), help: ArgumentHelp("Most tests in one step of a job of steps (each a run, one after another, in one slot).", valueName: "n"))
    var maxTests = StepsSpec.defaultMaxTestsPerStep

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

    @Option(name: .customLong("state-dir"), help: ArgumentHelp("Where the durable job queue is kept (queue.sqlite; default: /var/lib/corral as root, else $XDG_STATE_HOME/corral).", valueName: "dir"))
    var stateDir: String?

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

    @Flag(name: .customLong("accept-only"), help: "With a shared queue: accept jobs into it and run none here (corral worker runs them).")
    var acceptOnly = false

    @Option(name: .customLong("log-level"), help: ArgumentHelp("trace, debug, info, notice, warning, error or critical.", valueName: "level"))
    var logLevel: Logger.Level = .info

    @OptionGroup var containmentOptions: ContainmentOptions

    @OptionGroup var userRangeOption: UserRangeOption

    @OptionGroup var queueOption: QueueOption

    func serverConfiguration() throws -> ServerConfiguration {
        func parse<T>(_ value: String, _ flag: String, _ parser: (String) throws(LimitParseError) -> T) throws -> T {
            do {
                return try parser(value)
            } catch {
                throw ValidationError("--\(flag): \(error.description)")
            }
        }
        guard ["default", "none"].contains(seccomp) else { throw ValidationError("--seccomp: expected default or none, got '\(seccomp)'") }
        let maxBody = try parse(self.maxBody, "max-body", LimitValue.parseSize)
        return ServerConfiguration(
            host: host, port: port, token: try resolvedToken(),
            parallelism: parallelism ?? ProcessInfo.processInfo.activeProcessorCount, queue: queue,
            maxBody: Int(clamping: maxBody),
            maxBodiesInFlight: Int(clamping: try parse(maxBodiesInFlight, "max-bodies-in-flight", LimitValue.parseSize)),
            maxConnections: maxConnections,
            idleTimeout: try parse(idleTimeout, "idle-timeout", LimitValue.parseDuration),
            bodyTimeout: try parse(bodyTimeout, "body-timeout", LimitValue.parseDuration),
            ceilings: Ceilings(
                cpuTime: try parse(maxCpuTime, "max-cpu-time", LimitValue.parseDuration),
                wallTime: try parse(maxWallTime, "max-wall-time", LimitValue.parseDuration),
                memory: try parse(maxMemory, "max-memory", LimitValue.parseSize),
                output: try parse(maxOutput, "max-output", LimitValue.parseSize),
                processes: try parse(maxProcesses, "max-processes", LimitValue.parseCount),
                jobProcesses: maxJobProcesses,
                stepTests: maxTests),
            defaults: JobDefaults(
                cpuTime: try parse(defaultCpuTime, "default-cpu-time", LimitValue.parseDuration),
                wallTime: try defaultWallTime.map { try parse($0, "default-wall-time", LimitValue.parseDuration) },
                memory: try parse(defaultMemory, "default-memory", LimitValue.parseSize),
                output: try parse(defaultOutput, "default-output", LimitValue.parseSize),
                processes: try parse(defaultProcesses, "default-processes", LimitValue.parseCount)),
            isolate: !noIsolate,
            seccomp: seccomp == "none" ? .none : .standard,
            allowHostNetwork: allowHostNetwork,
            hostSupport: Self.testHostSupport(containment: containmentOptions.configuration),
            shutdownGrace: shutdownGrace == "0" ? .zero : try parse(shutdownGrace, "shutdown-grace", LimitValue.parseDuration),
            runner: try { var runner = containmentOptions.configuration; runner.userRange = try userRangeOption.range(); return runner }(),
            hostFiles: hostFiles,
            workdirLimit: maxDisk == "none" ? nil : try parse(maxDisk, "max-disk", LimitValue.parseSize),
            fileStore: fileStore == "none" ? nil : FileStoreSettings(
                directory: fileStore.hasPrefix("/") ? fileStore : FileManager.default.currentDirectoryPath + "/" + fileStore,
                maxBytes: try parse(fileStoreMax, "file-store-max", LimitValue.parseSize),
                maxFileBytes: try parse(fileStoreMaxFile, "file-store-max-file", LimitValue.parseSize)),
            stateDirectory: stateDir,
            resultTTL: try parse(resultTTL, "result-ttl", LimitValue.parseDuration),
            lease: try parse(lease, "lease", LimitValue.parseDuration),
            acceptOnly: acceptOnly,
            callbackAllow: callbackAllow,
            callbackSecret: try callbackSecretFile.map { file in
                do throws(ServerError) { return Array(try TokenFile.read(file, flag: "--callback-secret-file").utf8) } catch { throw ValidationError(error.description) }
            },
            callbackRetryDelay: try parse(callbackRetryDelay, "callback-retry-delay", LimitValue.parseDuration)
        )
    }

    /// `--token-file`, `--token` (with a warning: other processes can read it), or
    /// `CORRAL_TOKEN`, in that order; giving both flags is refused.
    private func resolvedToken() throws -> String? {
        if let tokenFile {
            guard token == nil else { throw ValidationError("--token and --token-file: give one") }
            do throws(ServerError) { return try TokenFile.read(tokenFile) } catch { throw ValidationError(error.description) }
        }
        if let token {
            StandardError.write("corral: warning: --token on the command line can be read by other processes (/proc/PID/cmdline); use --token-file or CORRAL_TOKEN\n")
            return token
        }
        return ProcessInfo.processInfo.environment["CORRAL_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
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

    func run() async throws {
        var configuration = try serverConfiguration()
        configuration.queueURL = try queueOption.url()
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let server: CorralServer
        do throws(ServerError) {
            server = try CorralServer(configuration: configuration, logger: Logger(label: "corral"))
        } catch {
            throw ValidationError(error.description)
        }
        try await server.run { host, port in
            let shown = host.contains(":") ? "[\(host)]" : host
            // Said once; a server whose stdout has no reader goes on serving.
            try? StandardOutput.write("corral: listening on http://\(shown):\(port)\n")
        }
    }
}
