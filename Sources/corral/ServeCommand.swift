import ArgumentParser
import Corral
import CorralServer
import Foundation
import Logging

extension Logger.Level: @retroactive ExpressibleByArgument {}

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the HTTP API: POST /v1/run runs a job spec and answers with its report.",
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

    @Option(help: ArgumentHelp("Require 'Authorization: Bearer TOKEN' on every route but /v1/health (default: $CORRAL_TOKEN).", valueName: "token"))
    var token: String?

    @Option(help: ArgumentHelp("Jobs run at once (default: the number of CPUs).", valueName: "n"))
    var parallelism: Int?

    @Option(help: ArgumentHelp("Jobs that may wait for a slot; past that, 503 with Retry-After.", valueName: "n"))
    var queue = 64

    @Option(name: .customLong("max-body"), help: ArgumentHelp("Largest request body (413 above it).", valueName: "size"))
    var maxBody = "64M"

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

    @Option(name: .customLong("max-job-processes"), help: ArgumentHelp("Most entries in a job's processes (they run at once, in one slot).", valueName: "n"))
    var maxJobProcesses = 16

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

    @Flag(name: .customLong("no-isolate"), help: "Run processes without isolation (it is on by default where the host allows it).")
    var noIsolate = false

    @Option(name: .customLong("shutdown-grace"), help: ArgumentHelp("On SIGTERM/SIGINT, how long running jobs may go on before they are killed (0: at once).", valueName: "duration"))
    var shutdownGrace = "10s"

    @Option(name: .customLong("log-level"), help: ArgumentHelp("trace, debug, info, notice, warning, error or critical.", valueName: "level"))
    var logLevel: Logger.Level = .info

    @OptionGroup var containmentOptions: ContainmentOptions

    func serverConfiguration() throws -> ServerConfiguration {
        func parse<T>(_ value: String, _ flag: String, _ parser: (String) throws(LimitParseError) -> T) throws -> T {
            do {
                return try parser(value)
            } catch {
                throw ValidationError("--\(flag): \(error.description)")
            }
        }
        let token = self.token ?? ProcessInfo.processInfo.environment["CORRAL_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        let maxBody = try parse(self.maxBody, "max-body", LimitValue.parseSize)
        return ServerConfiguration(
            host: host, port: port, token: token,
            parallelism: parallelism ?? ProcessInfo.processInfo.activeProcessorCount, queue: queue,
            maxBody: Int(clamping: maxBody),
            ceilings: Ceilings(
                cpuTime: try parse(maxCpuTime, "max-cpu-time", LimitValue.parseDuration),
                wallTime: try parse(maxWallTime, "max-wall-time", LimitValue.parseDuration),
                memory: try parse(maxMemory, "max-memory", LimitValue.parseSize),
                output: try parse(maxOutput, "max-output", LimitValue.parseSize),
                processes: try parse(maxProcesses, "max-processes", LimitValue.parseCount),
                jobProcesses: maxJobProcesses),
            defaults: JobDefaults(
                cpuTime: try parse(defaultCpuTime, "default-cpu-time", LimitValue.parseDuration),
                wallTime: try defaultWallTime.map { try parse($0, "default-wall-time", LimitValue.parseDuration) },
                memory: try parse(defaultMemory, "default-memory", LimitValue.parseSize),
                output: try parse(defaultOutput, "default-output", LimitValue.parseSize),
                processes: try parse(defaultProcesses, "default-processes", LimitValue.parseCount)),
            isolate: !noIsolate,
            shutdownGrace: shutdownGrace == "0" ? .zero : try parse(shutdownGrace, "shutdown-grace", LimitValue.parseDuration),
            runner: containmentOptions.configuration,
            hostFiles: hostFiles,
            workdirLimit: maxDisk == "none" ? nil : try parse(maxDisk, "max-disk", LimitValue.parseSize)
        )
    }

    func run() async throws {
        let configuration = try serverConfiguration()
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
