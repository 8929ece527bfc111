import ArgumentParser
import CCorral
import CCorralArguments
import CorralCommandLine
#if canImport(Glibc)
import Glibc
#endif

/// The long-running commands live in `corral-server`, a binary of their own beside `corral`,
/// so that a run does not pay for loading the HTTP server, its event loops and drivers.
/// `corral serve ARGS`, `corral worker ARGS` (and `corral help serve`) exec `corral-server serve ARGS`: same
/// arguments, same pid, same exit codes.
enum ServerCommands {
    static let names = ["serve", "worker"]

    /// Execs `corral-server` when the arguments name one of its commands; returns otherwise.
    static func handOver(_ arguments: [String]) {
        var forwarded = arguments
        if arguments.count >= 2, arguments[0] == "help", names.contains(arguments[1]) {
            forwarded = [arguments[1], "--help"]
        }
        guard let first = forwarded.first, names.contains(first) else { return }
        // The password of a --queue URL was hidden in this process's argv before main (see
        // CCorral's argv_secret.c); corral-server gets the URL as given and hides it again.
        if let masked = corral_queue_argument_masked().map({ String(cString: $0) }),
           let original = corral_queue_argument_original().map({ String(cString: $0) }) {
            forwarded = forwarded.map { $0 == masked ? original : $0 == "--queue=" + masked ? "--queue=" + original : $0 }
        }
        let server = serverPath()
        let argv = [server] + forwarded
        var cArguments = argv.map { strdup($0) }
        cArguments.append(nil)
        execv(server, cArguments)
        let reason = String(cString: strerror(errno))
        StandardError.write("corral: \(first) is done by \(server), which could not be started: \(reason)"
            + " (it is built beside corral: swift build -c release --product corral-server)\n")
        exit(ExitCodes.corralError)
    }

    /// `corral-server` in the directory of this executable (`/proc/self/exe`, not `argv[0]`,
    /// which a caller chooses).
    static func serverPath() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return "corral-server" }
        let path = String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let slash = path.lastIndex(of: "/") else { return "corral-server" }
        return String(path[...slash]) + "corral-server"
    }
}

/// Listed in `corral --help`; never run (``ServerCommands/handOver(_:)`` execs first).
struct ServeStub: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the HTTP API: POST /v1/run runs a job spec and answers with its report (corral-server)."
    )
    @Argument(parsing: .allUnrecognized) var arguments: [String] = []
    func run() throws {
        ServerCommands.handOver(["serve"] + arguments)
    }
}

/// Listed in `corral --help`; never run (``ServerCommands/handOver(_:)`` execs first).
struct WorkerStub: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run the jobs of a shared queue (PostgreSQL) that corral serve --queue-file accepts (corral-server)."
    )
    @Argument(parsing: .allUnrecognized) var arguments: [String] = []
    func run() throws {
        ServerCommands.handOver(["worker"] + arguments)
    }
}
