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

    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The program and its arguments (after --).", valueName: "program"))
    var command: [String] = []

    private var programArguments: [String] {
        command.first == "--" ? Array(command.dropFirst()) : command
    }

    func validate() throws {
        if programArguments.isEmpty {
            throw ValidationError("no program given (usage: corral run [options] -- program [arguments])")
        }
        if report == "-" && stdout == nil {
            throw ValidationError("--report -: allowed only with --stdout, so the program's output and the report do not mix")
        }
        for entry in environment where !entry.contains("=") || entry.hasPrefix("=") {
            throw ValidationError("--env: expected K=V, got '\(entry)'")
        }
        _ = try limitOptions.limits()
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
            standardOutput: stdout.map { .file($0) } ?? .inherit,
            standardError: stderr.map { .file($0) } ?? .inherit,
            limits: try limitOptions.limits()
        )
    }

    func run() async throws {
        let job = try job()
        let outcome = try await CancellableRun.run(job, configuration: containmentOptions.configuration)
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
            do {
                try JSONOutput.write(report, to: destination)
            } catch {
                StandardError.write("corral: writing the report to \(destination): \(error)\n")
                throw ExitCode(ExitCodes.corralError)
            }
        }
        throw ExitCode(report.commandExitCode)
    }
}

/// Runs a job as a task that SIGINT, SIGTERM and SIGHUP cancel: the run is killed and
/// reaped, and its report still comes back.
enum CancellableRun {
    static func run(_ job: Job, configuration: RunnerConfiguration) async throws -> Result<RunReport, CorralError> {
        let task = Task { () async -> Result<RunReport, CorralError> in
            do throws(CorralError) {
                return .success(try await Runner(configuration: configuration).run(job))
            } catch {
                return .failure(error)
            }
        }
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

/// Corral's JSON output: pretty, keys sorted, one trailing newline.
enum JSONOutput {
    static func data(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value) + Data("\n".utf8)
    }

    /// To a file, or to stdout for "-".
    static func write(_ value: some Encodable, to destination: String = "-") throws {
        let data = try data(value)
        if destination == "-" {
            FileHandle.standardOutput.write(data)
        } else {
            try data.write(to: URL(fileURLWithPath: destination))
        }
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
