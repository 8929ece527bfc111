import ArgumentParser
import CCorral
import Corral
import Dispatch
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

extension RunArguments {
    public func run() async throws {
        if let source = spec {
            let data: Data
            do { data = Data(try HostFile.read(source)) } catch {
                throw ValidationError("--spec: cannot read \(source): \(error)")
            }
            do {
                var document = try JobDocument.parse(data)
                if let cpus = try cpuList() {
                    try document.checkCPUs(within: cpus)
                    document = document.pinning(cpus)
                }
                switch document {
                case .job(let job): try await runJob(job)
                case .steps(let steps): try await runSteps(steps)
                }
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
        try finish(report)
    }
}

extension RunArguments {
    /// Whether ``runBlocking()`` can run this line: one plain process (no `--spec`, `--file`
    /// or `--collect`, which go through the job runner's tasks).
    public var runsBlocking: Bool {
        spec == nil && files.isEmpty && collect.isEmpty
    }

    /// `corral run` for a line ``runsBlocking`` takes, on the calling thread: the run is
    /// handed to the reaper and this thread waits for its report, so a one-shot `corral run`
    /// starts no task, no Dispatch queue or signal source, and one thread besides its own
    /// (the reaper). SIGINT, SIGTERM and SIGHUP cancel the run: they are blocked from here on
    /// (in every thread started later too; each child unblocks them before exec) and read
    /// from a signalfd, which stops the run when one arrives.
    public func runBlocking() throws {
        let job = try job()
        let configuration = try runnerConfiguration()
        let signals = CancelSignals.block()
        defer { signals.close() }
        let report: RunReport
        do throws(CorralError) {
            report = try Runner(configuration: configuration).runBlocking(job, stopWhenReadable: signals.descriptor)
        } catch {
            throw ValidationError(error.message)
        }
        try finish(report)
    }

    /// What `corral run` does with its report: warnings, the summary line, `--report`, and the program's exit code.
    private func finish(_ report: RunReport) throws {
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

    func runJob(_ spec: JobSpec) async throws {
        let runner = JobRunner(runner: Runner(configuration: try runnerConfiguration()), fileStore: try openFileStore())
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

/// SIGINT, SIGTERM and SIGHUP as a descriptor: blocked in the calling thread (and so in every
/// thread it starts afterwards) and readable from a signalfd. A blocked signal stays pending
/// for the process instead of killing it, whichever thread it is sent to.
struct CancelSignals {
    let descriptor: Int32?

    static func block() -> CancelSignals {
        let descriptor = corral_cancel_signalfd()
        return CancelSignals(descriptor: descriptor >= 0 ? descriptor : nil)
    }

    func close() {
        if let descriptor { _ = Glibc.close(descriptor) }
    }
}

enum Summary {
    static func line(for report: RunReport) -> String {
        let cpu = fixed(report.cpuTime, digits: 3)
        let wall = fixed(report.wallTime, digits: 3)
        let memory = fixed(Double(report.memoryPeak) / 1_048_576, digits: 1)
        let noun = report.processes == 1 ? "process" : "processes"
        return "corral: \(report.status.rawValue): \(report.message) [cpu \(cpu) s, wall \(wall) s, memory \(memory) MiB, \(report.processes) \(noun)]\n"
    }

    /// `value` rounded to `digits` decimals, as `%.Nf` prints it (the values are ≥ 0).
    static func fixed(_ value: Double, digits: Int) -> String {
        var scale: Int64 = 1
        for _ in 0..<digits { scale *= 10 }
        let scaled = Int64((value * Double(scale)).rounded())
        let fraction = String(scaled % scale)
        return "\(scaled / scale)." + String(repeating: "0", count: digits - fraction.count) + fraction
    }
}

extension RunArguments {
    /// `--file-store DIR` (with `--file-store-max`): the store `fileId` files come from and
    /// `"store": true` collects go to.
    func openFileStore() throws -> FileStore? {
        guard let directory = fileStore else { return nil }
        let maxBytes: UInt64
        do { maxBytes = try LimitValue.parseSize(fileStoreMax) } catch { throw ValidationError("--file-store-max: \(error)") }
        do throws(CorralError) {
            return try FileStore(directory: directory.hasPrefix("/") ? directory : FileManager.default.currentDirectoryPath + "/" + directory,
                                 maxBytes: maxBytes)
        } catch {
            throw ValidationError("--file-store: \(error.message)")
        }
    }
}
