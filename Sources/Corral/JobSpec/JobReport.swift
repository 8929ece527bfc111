/// What happened in a job: an overall status and each process's own report.
public struct JobReport: Sendable, Hashable, Codable {
    /// The first status other than `ok` among the processes, in the order given; else `ok`.
    public var status: RunStatus
    /// One report per process, in the order given, with its `name`.
    public var processes: [NamedRunReport]
    /// The files collected after the run, in the order asked for.
    public var files: [CollectedFile]
    /// The working directory, when it was kept (`workdir.keep`); else nil (it was removed).
    public var workdir: String?
    /// Seconds from when the runner took the job up (before its directories, files, stream
    /// files and pipes were made) until every process had ended and its `collect` files were
    /// read: the setup, the processes and the collection. The working directory's removal,
    /// after the report, is not in it. Each process's own `wallTime` (from its spawn to its
    /// end) is in its report, and `startedAt`/`endedAt` place it on the job's clock.
    public var wallTime: Double

    public init(status: RunStatus, processes: [NamedRunReport], files: [CollectedFile], workdir: String?, wallTime: Double) {
        self.status = status
        self.processes = processes
        self.files = files
        self.workdir = workdir
        self.wallTime = wallTime
    }

    enum CodingKeys: String, CodingKey { case status, processes, files, workdir, wallTime }

    /// Every key is always present; `workdir` is null when the directory was removed.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(status, forKey: .status)
        try container.encode(processes, forKey: .processes)
        try container.encode(files, forKey: .files)
        try container.encode(workdir, forKey: .workdir)
        try container.encode(wallTime, forKey: .wallTime)
    }

    /// The exit code `corral run --spec` gives: that of the first process whose status is
    /// not `ok` (see ``RunReport/commandExitCode``), else 0.
    public var commandExitCode: Int32 {
        processes.first { $0.report.status != .ok }?.report.commandExitCode ?? 0
    }
}

/// A process's report in a job: its name, when it started and ended on the job's clock,
/// then every field of ``RunReport``.
public struct NamedRunReport: Sendable, Hashable, Codable {
    public var name: String
    /// Seconds on the job's clock (CLOCK_MONOTONIC; 0 is the moment the job's processes are
    /// about to be started, once its directories, files and pipes are ready): when Corral
    /// began this process's spawn (where its `wallTime` counts from), and when it saw its
    /// main process end (`startedAt` + `wallTime`). nil when nothing was spawned (a setup
    /// error before the clone, a job cancelled first). Every process of a job (or of one
    /// test) is on the same clock, so they tell who stopped first.
    public var startedAt: Double?
    public var endedAt: Double?
    public var report: RunReport

    public init(name: String, report: RunReport, startedAt: Double? = nil, endedAt: Double? = nil) {
        self.name = name
        self.report = report
        self.startedAt = startedAt
        self.endedAt = endedAt
    }

    enum CodingKeys: String, CodingKey { case name, startedAt, endedAt }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        startedAt = try container.decodeIfPresent(Double.self, forKey: .startedAt)
        endedAt = try container.decodeIfPresent(Double.self, forKey: .endedAt)
        report = try RunReport(from: decoder)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(startedAt, forKey: .startedAt)
        try container.encode(endedAt, forKey: .endedAt)
        try report.encode(to: encoder)
    }
}

extension JobReport {
    /// Whether a stop (a deadline, a shutdown, a cancelled task) cut the job short: a run
    /// cancelled, or a file not collected.
    public var cutByStop: Bool {
        processes.contains { $0.report.status == .cancelled } || files.contains(where: \.cutByStop)
    }
}

/// A file collected from the working directory after the run.
public struct CollectedFile: Sendable, Hashable, Codable {
    public var path: String
    /// The content, as text or base64 (``CapturedOutput``), cut at the file's `max`; nil on error.
    public var content: CapturedOutput?
    /// Why it could not be collected: missing, a symbolic link, not a regular file, outside
    /// the working directory...
    public var error: String?
    /// Whose directory it came from, in a job of several processes.
    public var process: String?

    /// The start of ``error`` for a file the job's stop (a deadline, a shutdown) left unread.
    public static let notCollected = "not collected: "

    /// The error of a file the job's stop left unread, naming the stop's reason.
    static func notCollected(_ stop: RunStop) -> String {
        notCollected + (stop.reason ?? "the job was stopped")
    }

    /// Whether the job's stop left this file unread.
    public var cutByStop: Bool { error?.hasPrefix(Self.notCollected) == true }
    /// `"store": true`: the stored file's id, its size, and whether any execute bit was set.
    public var fileId: FileId?
    public var size: UInt64?
    public var executable: Bool?

    public init(path: String, content: CapturedOutput?, error: String?, process: String? = nil,
                fileId: FileId? = nil, size: UInt64? = nil, executable: Bool? = nil) {
        self.path = path
        self.content = content
        self.error = error
        self.process = process
        self.fileId = fileId
        self.size = size
        self.executable = executable
    }
}
