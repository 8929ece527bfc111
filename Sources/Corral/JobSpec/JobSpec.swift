/// A declarative job: one or more processes, the pipes between them, files put into the
/// working directory before the run and files collected after it. The same document for
/// the library (``JobRunner``), `corral run --spec` and the server. Parse it with
/// ``JobSpec/parse(_:)``, which refuses anything it does not know, naming the field.
public struct JobSpec: Sendable, Hashable, Codable {
    /// The most entries a job's `collect` may have (each reads its file after the runs).
    public static let maxCollect = 256
    public var processes: [ProcessSpec]
    /// The names of the pipes; each has exactly one reading and one writing end among the
    /// processes' `stdin`, `stdout`, `stderr` and `fds`.
    public var pipes: [String]
    public var files: [FileSpec]
    public var collect: [CollectSpec]
    public var workdir: WorkdirSpec

    public init(processes: [ProcessSpec], pipes: [String] = [], files: [FileSpec] = [], collect: [CollectSpec] = [],
                workdir: WorkdirSpec = WorkdirSpec()) {
        self.processes = processes
        self.pipes = pipes
        self.files = files
        self.collect = collect
        self.workdir = workdir
    }
}

public struct ProcessSpec: Sendable, Hashable, Codable {
    /// Unique within the job; defaults to `p0`, `p1`, ... by position.
    public var name: String
    public var args: [String]
    /// The whole environment; by default `PATH=/usr/local/bin:/usr/bin:/bin` only.
    public var env: [String: String]
    /// A directory inside the process's own working directory (its default).
    public var dir: SpecPath?
    public var limits: Limits
    public var stdin: StreamSpec
    public var stdout: StreamSpec
    public var stderr: StreamSpec
    /// More descriptors (3 and up), each a pipe end.
    public var fds: [Int32: PipeEndSpec]
    /// Run isolated (``Isolation``); nil runs on the host.
    public var isolation: Isolation?
    /// Who the process runs as (``Job/user``); a job spec's JSON cannot say it.
    public var user: RunUser?
    /// Signals the program starts with ignored (JSON `"ignoreSignals": ["SIGPIPE"]`).
    public var ignoreSignals: SignalSet
    /// The CPUs it is pinned to (``Job/cpus``): JSON `"cpus": "0-1,3"`, on the process or,
    /// for every process that names none, on the job (or step).
    public var cpus: CPUList?

    public init(name: String, args: [String], env: [String: String] = Job.defaultEnvironment, dir: SpecPath? = nil,
                limits: Limits = Limits(), stdin: StreamSpec = .null, stdout: StreamSpec = .capture(max: StreamSpec.defaultCaptureMax),
                stderr: StreamSpec = .capture(max: StreamSpec.defaultCaptureMax), fds: [Int32: PipeEndSpec] = [:],
                isolation: Isolation? = nil, user: RunUser? = nil, ignoreSignals: SignalSet = SignalSet(), cpus: CPUList? = nil) {
        self.name = name
        self.args = args
        self.env = env
        self.dir = dir
        self.limits = limits
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.fds = fds
        self.isolation = isolation
        self.user = user
        self.ignoreSignals = ignoreSignals
        self.cpus = cpus
    }
}

/// Where a standard stream goes or comes from.
public enum StreamSpec: Sendable, Hashable, Codable {
    /// `/dev/null` (JSON `null`).
    case null
    /// A file inside the process's working directory (JSON: a string, or `{"file": PATH}`),
    /// opened by Corral beneath the directory's descriptor before any process of the job
    /// starts; it must be a regular file (stdout and stderr: created or truncated).
    case file(SpecPath)
    /// A file of the host, by absolute path: for the library's and the CLI's own callers
    /// (`corral run --file ... --stdin F`). A job spec's JSON cannot say it.
    case hostFile(String)
    /// stdin only: these bytes (`{"content": TEXT}` or `{"contentBase64": B64}`).
    case content([UInt8])
    /// An end of a named pipe (`{"pipe": NAME}`): stdin reads, stdout and stderr write.
    case pipe(String)
    /// stdout and stderr only: into the report, cut at `max` bytes (`{"capture": {"max": S}}`,
    /// or `{"capture": true}` for the default of 1 MiB); past it the process is killed
    /// (`output-limit`), or with `"onLimit": "truncate"` goes on (``OutputLimitAction``).
    case capture(max: UInt64, onLimit: OutputLimitAction = .kill)

    public static let defaultCaptureMax: UInt64 = 1 << 20
}

public struct PipeEndSpec: Sendable, Hashable, Codable {
    public enum End: String, Sendable, Hashable, Codable { case read, write }
    public var pipe: String
    public var end: End

    public init(pipe: String, end: End) {
        self.pipe = pipe
        self.end = end
    }
}

/// A file put into the working directory before the run: into the named process's own
/// directory, or, without a process, into every process's (a copy each, so that no process
/// can change what another reads).
public struct FileSpec: Sendable, Hashable, Codable {
    public enum Source: Sendable, Hashable, Codable {
        case content([UInt8])
        /// A copy of a file of the host.
        case copy(String)
        /// A copy of a file an earlier step left (`{"fromStep", "fromPath", "fromProcess"?}`),
        /// execute bits kept; only in a step of ``StepsSpec``.
        case fromStep(StepFileReference)
        /// A file of the ``FileStore`` (JSON `{"fileId": ID}`): placed read-only (mode 0444,
        /// or 0555 when `executable`), owned by Corral, never writable by the program.
        case stored(FileId)
    }
    /// Inside the process's working directory; subdirectories are created.
    public var path: SpecPath
    public var source: Source
    /// Mode 0755 instead of 0644 (a copy keeps the original's execute bits either way).
    public var executable: Bool
    /// The process whose directory gets the file; nil: every process's.
    public var process: String?

    public init(path: SpecPath, source: Source, executable: Bool = false, process: String? = nil) {
        self.path = path
        self.source = source
        self.executable = executable
        self.process = process
    }
}

/// A file returned after the run, from one process's working directory.
public struct CollectSpec: Sendable, Hashable, Codable {
    /// Inside the process's working directory; never through a symbolic link.
    public var path: SpecPath
    /// At most this many bytes are returned (default 1 MiB).
    public var max: UInt64
    /// Whose directory: required when the job has more than one process; nil: the only one.
    public var process: String?
    /// Into the ``FileStore`` instead of the report (JSON `"store": true`): the collected
    /// file then carries `fileId`, `size` and `executable`; a file over `max` is not stored.
    public var store: Bool

    public init(path: SpecPath, max: UInt64 = 1 << 20, process: String? = nil, store: Bool = false) {
        self.path = path
        self.max = max
        self.process = process
        self.store = store
    }
}

public struct WorkdirSpec: Sendable, Hashable, Codable {
    /// Keep the private temporary working directory after the job (its path is reported).
    public var keep: Bool

    public init(keep: Bool = false) {
        self.keep = keep
    }
}
