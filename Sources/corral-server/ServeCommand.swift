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

    @Option(help: ArgumentHelp("A number: jobs that may wait for a slot; past that, 503 with Retry-After (default 64). A URL (postgres://USER:PASSWORD@HOST:PORT/DB): the shared queue, as --queue-file (its password is hidden from /proc/PID/cmdline at start).", valueName: "n|url"))
    var queue: [String] = []

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

    @Option(name: .customLong("state-dir"), help: ArgumentHelp("Where the durable job queue is kept (queue.sqlite; default: /var/lib/corral as root, else $XDG_STATE_HOME/corral).", valueName: "dir"))
    var stateDir: String?

    @Flag(name: .customLong("accept-only"), help: "With a shared queue: accept jobs into it and run none here (corral worker runs them).")
    var acceptOnly = false

    /// What `corral worker` takes too: parallelism, ceilings, defaults, isolation, the file
    /// store, lease, callbacks, containment, the shared queue.
    @OptionGroup var job: JobOptions

    func serverConfiguration() throws -> ServerConfiguration {
        var configuration = try job.configuration()
        configuration.host = host
        configuration.port = port
        configuration.token = try resolvedToken()
        if let waiting = waitingQueue {
            guard let value = Int(waiting), value >= 0 else { throw ValidationError("--queue \(waiting): a number of waiting jobs, or the shared queue's postgres:// URL") }
            configuration.queue = value
        }
        configuration.maxBody = Int(clamping: try JobOptions.parse(maxBody, "max-body", LimitValue.parseSize))
        configuration.maxBodiesInFlight = Int(clamping: try JobOptions.parse(maxBodiesInFlight, "max-bodies-in-flight", LimitValue.parseSize))
        configuration.maxConnections = maxConnections
        configuration.idleTimeout = try JobOptions.parse(idleTimeout, "idle-timeout", LimitValue.parseDuration)
        configuration.bodyTimeout = try JobOptions.parse(bodyTimeout, "body-timeout", LimitValue.parseDuration)
        configuration.stateDirectory = stateDir
        configuration.acceptOnly = acceptOnly
        return configuration
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

    /// `--queue` may be given twice: a number and a URL.
    private var waitingQueue: String? { queue.last(where: { !$0.contains("://") }) }
    private var queueURL: String? { queue.last(where: { $0.contains("://") }) }

    func run() async throws {
        var configuration = try serverConfiguration()
        configuration.queueURL = try job.queueOption.url(flag: queueURL)
        let server = try job.makeServer(configuration)
        try await server.run { host, port in
            let shown = host.contains(":") ? "[\(host)]" : host
            // Said once; a server whose stdout has no reader goes on serving.
            try? StandardOutput.write("corral: listening on http://\(shown):\(port)\n")
        }
    }
}
