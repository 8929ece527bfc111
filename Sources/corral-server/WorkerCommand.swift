import ArgumentParser
import Corral
import CorralCommandLine
import CorralServer
import Foundation
import Logging

/// `corral worker`: runs the jobs of a shared PostgreSQL queue on this machine. Thin: the
/// work is ``CorralServer/runWorker(onReady:)``.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run the jobs of a shared queue (PostgreSQL) that corral serve --queue accepts.",
        discussion: """
        Takes jobs with SELECT … FOR UPDATE SKIP LOCKED, holds a lease renewed by heartbeats, \
        writes each report once. Admits each job under its own flags (ceilings, defaults, \
        isolation: the job flags of corral serve, not its HTTP ones). Prints \
        "corral: worker ready" once the queue is open. SIGTERM or SIGINT: claims nothing more, \
        running jobs get --shutdown-grace, then are killed and given back to the queue; exit 0.
        """
    )

    /// The job flags of `corral serve` (ceilings, defaults, isolation, containment, lease,
    /// --queue-file); none of its HTTP flags.
    @OptionGroup var job: JobOptions

    @Option(help: ArgumentHelp("The shared queue's URL (postgres://USER:PASSWORD@HOST:PORT/DB); its password is hidden from /proc/PID/cmdline at start. Or --queue-file, or $CORRAL_QUEUE_URL.", valueName: "url"))
    var queue: String?

    func run() async throws {
        var configuration = try job.configuration()
        guard let url = try job.queueOption.url(flag: queue) else {
            throw ValidationError("a worker needs a shared queue: --queue URL, --queue-file FILE or CORRAL_QUEUE_URL (postgres://…)")
        }
        configuration.queueURL = url
        let server = try job.makeServer(configuration)
        let lanes = configuration.parallelism
        do {
            try await server.runWorker {
                try? StandardOutput.write("corral: worker ready (\(lanes) at once)\n")
            }
        } catch let error as ServerError {
            throw ValidationError(error.description)
        }
    }
}
