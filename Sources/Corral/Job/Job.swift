/// One program to run under Corral: what to execute, with which environment and stdio,
/// under which limits. A plain value: build it, validate it, hand it to ``Runner``.
public struct Job: Sendable, Hashable, Codable {
    /// The program and its arguments; `arguments[0]` is the program. Without a slash it is
    /// looked up in the job's own `PATH` (not Corral's) before anything is started.
    public var arguments: [String]
    /// The complete environment of the program. Corral adds nothing to it.
    public var environment: [String: String]
    /// The program's working directory; `nil` keeps Corral's.
    public var workingDirectory: String?
    public var standardInput: Input
    public var standardOutput: Output
    public var standardError: Output
    public var limits: Limits
    /// Namespaces, a fresh /proc and no privileges; nil runs on the host.
    public var isolation: Isolation?
    /// Who the program runs as (``RunUser``): nil is nobody when Corral is root (isolated or
    /// not), and Corral's own user otherwise. Root (uid 0) only when asked for here.
    public var user: RunUser?
    /// Signals the program starts with ignored (``SignalSet``); every other one starts at its
    /// default, with an empty mask.
    public var ignoredSignals: SignalSet = SignalSet()
    /// The CPUs the run is pinned to (``CPUList``): its processes' affinity, set before
    /// exec, and with cgroup containment its cpuset, so the program cannot widen it. nil:
    /// every CPU Corral may use.
    public var cpus: CPUList?

    /// The environment a job gets unless told otherwise: a `PATH` and nothing else.
    public static let defaultEnvironment: [String: String] = ["PATH": "/usr/local/bin:/usr/bin:/bin"]

    public init(
        arguments: [String],
        environment: [String: String] = Job.defaultEnvironment,
        workingDirectory: String? = nil,
        standardInput: Input = .null,
        standardOutput: Output = .inherit,
        standardError: Output = .inherit,
        limits: Limits = Limits(),
        isolation: Isolation? = nil,
        user: RunUser? = nil,
        ignoredSignals: SignalSet = SignalSet(),
        cpus: CPUList? = nil
    ) {
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.standardInput = standardInput
        self.standardOutput = standardOutput
        self.standardError = standardError
        self.limits = limits
        self.isolation = isolation
        self.user = user
        self.ignoredSignals = ignoredSignals
        self.cpus = cpus
    }

    /// Checks what can be checked without starting anything.
    public func validate() throws(CorralError) {
        guard let program = arguments.first, !program.isEmpty else {
            throw CorralError(.invalidJob, "arguments: no program given")
        }
        for (index, argument) in arguments.enumerated() where argument.utf8.contains(0) {
            throw CorralError(.invalidJob, "arguments[\(index)]: contains a NUL byte")
        }
        for (key, value) in environment {
            if key.isEmpty || key.contains("=") || key.utf8.contains(0) || value.utf8.contains(0) {
                throw CorralError(.invalidJob, "environment: invalid variable name or value for \"\(key)\"")
            }
        }
        if let directory = workingDirectory, directory.isEmpty || directory.utf8.contains(0) {
            throw CorralError(.invalidJob, "workingDirectory: must be a non-empty path")
        }
        try limits.validate()
        try cpus?.checkAvailable()
    }
}
