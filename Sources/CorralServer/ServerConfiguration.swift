import Corral
import Foundation

/// How `corral serve` listens, how many runs it takes at once, and what it allows a job.
public struct ServerConfiguration: Sendable {
    /// Address to bind: a loopback address by default. Any other address needs ``token``.
    public var host: String
    /// TCP port; 0 picks a free one (the bound port is reported once listening).
    public var port: Int
    /// When set, every route but `/v1/health` needs `Authorization: Bearer <token>`.
    public var token: String?
    /// Jobs run at once.
    public var parallelism: Int
    /// Jobs that may wait for a free slot; past that a request gets 503 with `Retry-After`.
    public var queue: Int
    /// Largest request body, in bytes (413 above it).
    public var maxBody: Int
    /// Memory all request bodies in flight may take together, in bytes: a body is counted
    /// from its `Content-Length` before it is read, as it streams in, then at what parsing
    /// it costs, until its answer is written. A request past it gets 503 (413 when it alone
    /// is over it), and the server never grows for it.
    public var maxBodiesInFlight: Int
    /// Connections open at once; one more gets a 503 and is closed.
    public var maxConnections: Int
    /// A connection that has had no request part for this long, while it waits for a request
    /// or reads one, is closed (so a request's header must arrive within it).
    public var idleTimeout: Duration
    /// A request's body must have arrived within this long after its header, or the
    /// connection is closed.
    public var bodyTimeout: Duration
    /// What a job may ask for at most (400 above it) ...
    public var ceilings: Ceilings
    /// ... and what it gets when it does not say.
    public var defaults: JobDefaults
    /// Run every process isolated (``Isolation``). Where the host cannot, the server
    /// refuses to start (fail closed) unless this is false (`--no-isolate`).
    public var isolate: Bool
    /// The seccomp filter of isolated processes: `.standard`, or `.none` (`--seccomp none`,
    /// the only way to serve where libseccomp cannot be loaded).
    public var seccomp: SeccompProfile
    /// Let a job ask for `"network": "host"` (`--allow-host-network`); otherwise such a job
    /// is refused with 400.
    public var allowHostNetwork: Bool
    /// What the host offers isolation, as checked at start; nil: probed (``HostReport``).
    /// For tests, to play a host without namespaces or libseccomp.
    public var hostSupport: HostSupport?
    /// On SIGTERM/SIGINT: how long runs in flight may go on before they are killed.
    public var shutdownGrace: Duration
    /// Containment of the runs (cgroup v2, v1, process group).
    public var runner: RunnerConfiguration
    /// Host directories whose files a job may read (`files[].copy`, an absolute `stdin`
    /// file). Empty, the default: a job names no host file. A job never writes a host file
    /// nor runs outside its working directory, whatever this says.
    public var hostFiles: [String]
    /// Bytes a job may keep in its working directory (a tmpfs of that size, as root); nil:
    /// unbounded (a plain directory).
    public var workdirLimit: UInt64?
    /// The file store (`/v1/files`); nil: none (`corral serve` has one by default, at
    /// ``FileStore/defaultDirectory``).
    public var fileStore: FileStoreSettings?
    /// Where the durable queue's file lives (`queue.sqlite`); nil: ``StateDirectory/defaultPath(environment:)``.
    public var stateDirectory: String?
    /// How long a finished or cancelled job's result is kept (`GET /v1/jobs/{id}`), then removed.
    public var resultTTL: Duration
    /// A running job's lease: a worker that has not renewed it for this long (its heartbeats
    /// come every third of it) loses the job, which runs again.
    public var lease: Duration
    /// The shared queue's URL (`postgres://…`), a secret: never logged nor shown in an error;
    /// nil: the embedded SQLite queue under ``stateDirectory``.
    public var queueURL: String?
    /// Accept jobs into the queue without running any here (`--accept-only`): an API server of
    /// many machines, whose workers run them.
    public var acceptOnly: Bool
    /// Where job callbacks may go (`--callback-allow`: host names, addresses, networks); empty:
    /// callbacks are off, and a job asking for one is refused.
    public var callbackAllow: [String]
    /// The key of the callbacks' HMAC-SHA256 signature (`--callback-secret-file`).
    public var callbackSecret: [UInt8]?
    /// The delay before a callback's first retry; each next one doubles.
    public var callbackRetryDelay: Duration
    /// `--cpus`: slot k of `parallelism` runs on the k-th of these CPUs, and a job may name
    /// only CPUs among them. nil: runs are not pinned unless their job says so.
    public var cpus: CPUList? = nil
    /// PEM certificates (a private CA) trusted for `https://` callbacks besides the system's
    /// trust store (`--callback-ca`).
    public var callbackCA: String?

    public init(host: String = "127.0.0.1", port: Int = 5050, token: String? = nil,
                parallelism: Int = ProcessInfo.processInfo.activeProcessorCount, queue: Int = 64,
                maxBody: Int = 64 << 20, maxBodiesInFlight: Int = 256 << 20, maxConnections: Int = 512,
                idleTimeout: Duration = .seconds(30), bodyTimeout: Duration = .seconds(60), ceilings: Ceilings = Ceilings(), defaults: JobDefaults = JobDefaults(),
                isolate: Bool = true, seccomp: SeccompProfile = .standard, allowHostNetwork: Bool = false,
                hostSupport: HostSupport? = nil, shutdownGrace: Duration = .seconds(10), runner: RunnerConfiguration = RunnerConfiguration(),
                hostFiles: [String] = [], workdirLimit: UInt64? = 1 << 30, fileStore: FileStoreSettings? = nil,
                stateDirectory: String? = nil, resultTTL: Duration = .seconds(86_400), lease: Duration = .seconds(30),
                queueURL: String? = nil, acceptOnly: Bool = false,
                callbackAllow: [String] = [], callbackSecret: [UInt8]? = nil, callbackRetryDelay: Duration = .seconds(1), callbackCA: String? = nil) {
        self.callbackCA = callbackCA
        self.callbackAllow = callbackAllow
        self.callbackSecret = callbackSecret
        self.callbackRetryDelay = callbackRetryDelay
        self.queueURL = queueURL
        self.acceptOnly = acceptOnly
        self.stateDirectory = stateDirectory
        self.resultTTL = resultTTL
        self.lease = lease
        self.host = host
        self.port = port
        self.token = token
        self.parallelism = parallelism
        self.queue = queue
        self.maxBody = maxBody
        self.maxBodiesInFlight = maxBodiesInFlight
        self.maxConnections = maxConnections
        self.idleTimeout = idleTimeout
        self.bodyTimeout = bodyTimeout
        self.ceilings = ceilings
        self.defaults = defaults
        self.isolate = isolate
        self.seccomp = seccomp
        self.allowHostNetwork = allowHostNetwork
        self.hostSupport = hostSupport
        self.shutdownGrace = shutdownGrace
        self.runner = runner
        self.hostFiles = hostFiles
        self.workdirLimit = workdirLimit
        self.fileStore = fileStore
    }

    /// Whether ``host`` is a loopback address (`127.0.0.0/8`, `::1`, `localhost`).
    public var bindsLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// Refuses a configuration that cannot be served safely or at all.
    public func validate() throws(ServerError) {
        guard parallelism >= 1 else { throw ServerError("--parallelism must be at least 1") }
        if let cpus {
            guard parallelism <= cpus.cpus.count else {
                throw ServerError("--parallelism \(parallelism) needs a CPU of its own for each slot, and --cpus \(cpus) has \(cpus.cpus.count)")
            }
            do throws(CorralError) { try cpus.checkAvailable() } catch { throw ServerError("--" + error.message) }
        }
        guard queue >= 0 else { throw ServerError("--queue must be 0 or more") }
        guard maxBody >= 1 else { throw ServerError("--max-body must be at least 1 byte") }
        guard maxBodiesInFlight >= maxBody else {
            throw ServerError("--max-bodies-in-flight must be at least --max-body (\(maxBody) bytes)")
        }
        guard maxConnections >= 1 else { throw ServerError("--max-connections must be at least 1") }
        guard idleTimeout > .zero else { throw ServerError("--idle-timeout must be greater than zero") }
        guard bodyTimeout > .zero else { throw ServerError("--body-timeout must be greater than zero") }
        switch seccomp {
        case .standard, .none: break
        case .policy: throw ServerError("--seccomp: a server uses default or none")
        }
        guard (0...65535).contains(port) else { throw ServerError("--port must be from 0 to 65535") }
        guard shutdownGrace >= .zero else { throw ServerError("--shutdown-grace must not be negative") }
        if let token, token.isEmpty { throw ServerError("the token is empty") }
        if !bindsLoopback && token == nil {
            throw ServerError("binding \(host), which is not a loopback address, needs --token (or CORRAL_TOKEN)")
        }
        try ceilings.validate()
        try defaults.validate(against: ceilings)
        _ = try resolvedHostFiles()
        guard resultTTL > .zero else { throw ServerError("--result-ttl must be greater than zero") }
        guard lease >= .milliseconds(300) else { throw ServerError("--lease must be at least 300ms") }
        if !callbackAllow.isEmpty {
            _ = try CallbackPolicy(allow: callbackAllow)
            guard callbackSecret?.isEmpty == false else { throw ServerError("--callback-allow needs --callback-secret-file (callbacks are signed)") }
        }
        if callbackCA != nil && callbackAllow.isEmpty { throw ServerError("--callback-ca goes with --callback-allow") }
        guard callbackRetryDelay > .zero else { throw ServerError("--callback-retry-delay must be greater than zero") }
        if acceptOnly && queueURL == nil {
            throw ServerError("--accept-only needs a shared queue (--queue-file or CORRAL_QUEUE_URL): nothing would run the jobs")
        }
        if let stateDirectory, !stateDirectory.hasPrefix("/") { throw ServerError("--state-dir \(stateDirectory): must be an absolute path") }
        if workdirLimit == 0 { throw ServerError("--max-disk must be greater than zero (or none)") }
    }

    /// ``hostFiles`` with symbolic links resolved; each must be an existing directory.
    func resolvedHostFiles() throws(ServerError) -> [String] {
        var resolved: [String] = []
        for directory in hostFiles {
            guard directory.hasPrefix("/") else { throw ServerError("--host-files \(directory): must be an absolute path") }
            guard let real = realpath(directory, nil) else {
                throw ServerError("--host-files \(directory): \(String(cString: strerror(errno)))")
            }
            defer { free(real) }
            var info = stat()
            guard stat(real, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
                throw ServerError("--host-files \(directory): not a directory")
            }
            resolved.append(String(cString: real))
        }
        return resolved
    }
}

/// Where the server's file store is and how large it may grow.
public struct FileStoreSettings: Sendable, Hashable {
    public var directory: String
    /// `--file-store-max`: the most bytes it holds.
    public var maxBytes: UInt64
    /// `--file-store-max-file`: the largest file.
    public var maxFileBytes: UInt64
    /// `--file-store-copies-max`: the most memory kept in sealed copies of stored inputs (a
    /// plain program's stored stdin; see ``FileStore/openSealedInput(_:)``).
    public var sealedCopyBytes: UInt64

    public init(directory: String = FileStore.defaultDirectory, maxBytes: UInt64 = FileStore.defaultMaxBytes,
                maxFileBytes: UInt64 = FileStore.defaultMaxFileBytes, sealedCopyBytes: UInt64 = FileStore.defaultSealedCopyBytes) {
        self.directory = directory
        self.maxBytes = maxBytes
        self.maxFileBytes = maxFileBytes
        self.sealedCopyBytes = sealedCopyBytes
    }
}

/// What the host offers isolation (see ``HostReport``): namespaces, and a seccomp filter
/// (libseccomp loadable, filters in the kernel).
public struct HostSupport: Sendable, Hashable {
    public var isolation: Bool
    public var seccomp: Bool

    public init(isolation: Bool, seccomp: Bool) {
        self.isolation = isolation
        self.seccomp = seccomp
    }

    /// What ``HostReport`` finds here.
    public static func probe(configuration: RunnerConfiguration) -> HostSupport {
        let host = HostReport.inspect(configuration: configuration)
        return HostSupport(isolation: host.isolation != "unavailable", seccomp: host.isolationSeccomp)
    }
}

/// A configuration the server refuses, or a failure to start it.
public struct ServerError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
