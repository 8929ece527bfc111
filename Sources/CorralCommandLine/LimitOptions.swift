import ArgumentParser
import Corral
import CorralCommandLine

/// The limit flags, shared by every command that runs something.
public struct LimitOptions: ParsableArguments {
    public init() {}

    @Option(name: .customLong("cpu-time"), parsing: .unconditional, help: ArgumentHelp("CPU time of all processes together (2, 1.5, 500ms, 2s, 1m).", valueName: "duration"))
    var cpuTime: String?

    @Option(name: .customLong("wall-time"), parsing: .unconditional, help: ArgumentHelp("Wall-clock time until the main process ends (default with --cpu-time: 2 × cpu-time + 1s).", valueName: "duration"))
    var wallTime: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Memory of the whole run: the cgroup's limit (RLIMIT_AS per process without cgroups). Bytes, or K/M/G; at least 1M.", valueName: "size"))
    var memory: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Bytes any process may write to a file, redirected stdout/stderr included.", valueName: "size"))
    var output: String?

    @Option(name: .customLong("open-files"), parsing: .unconditional, help: ArgumentHelp("RLIMIT_NOFILE.", valueName: "n"))
    var openFiles: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("RLIMIT_STACK, or unlimited.", valueName: "size"))
    var stack: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Processes and threads of the run at once (the cgroup's pids.max); at most 4194304.", valueName: "n"))
    var processes: String?

    @Option(name: .customLong("address-space"), parsing: .unconditional, help: ArgumentHelp("RLIMIT_AS of each process.", valueName: "size"))
    var addressSpace: String?

    public var values: LimitArguments {
        LimitArguments(cpuTime: cpuTime, wallTime: wallTime, memory: memory, output: output, openFiles: openFiles,
                       stack: stack, processes: processes, addressSpace: addressSpace)
    }
}

/// The limit flags as given (strings, checked by ``limits()``).
public struct LimitArguments: Sendable, Equatable {
    public var cpuTime: String?
    public var wallTime: String?
    public var memory: String?
    public var output: String?
    public var openFiles: String?
    public var stack: String?
    public var processes: String?
    public var addressSpace: String?

    public init(cpuTime: String? = nil, wallTime: String? = nil, memory: String? = nil, output: String? = nil,
                openFiles: String? = nil, stack: String? = nil, processes: String? = nil, addressSpace: String? = nil) {
        self.cpuTime = cpuTime
        self.wallTime = wallTime
        self.memory = memory
        self.output = output
        self.openFiles = openFiles
        self.stack = stack
        self.processes = processes
        self.addressSpace = addressSpace
    }

    public var isEmpty: Bool {
        [cpuTime, wallTime, memory, output, openFiles, stack, processes, addressSpace].allSatisfy { $0 == nil }
    }

    /// The limits, each value checked; a bad one names its flag.
    public func limits() throws -> Limits {
        func parse<T>(_ value: String?, _ flag: String, _ parser: (String) throws(LimitParseError) -> T) throws -> T? {
            guard let value else { return nil }
            do {
                return try parser(value)
            } catch {
                throw ValidationError("--\(flag): \(error.description)")
            }
        }
        let memoryLimit = try parse(memory, "memory", LimitValue.parseSize)
        if let memory, let memoryLimit, memoryLimit < Limits.minimumMemory {
            throw ValidationError("--memory: \(memory) is below the smallest memory limit, \(LimitValue.describe(bytes: Limits.minimumMemory)) (no program can start with less)")
        }
        let processLimit = try parse(processes, "processes", LimitValue.parseCount)
        if let processes, let processLimit, processLimit > Limits.maximumProcesses {
            throw ValidationError("--processes: \(processes) is above the largest pids.max the kernel takes, \(Limits.maximumProcesses)")
        }
        return Limits(
            cpuTime: try parse(cpuTime, "cpu-time", LimitValue.parseDuration),
            wallTime: try parse(wallTime, "wall-time", LimitValue.parseDuration),
            memory: memoryLimit,
            output: try parse(output, "output", LimitValue.parseSize),
            openFiles: try parse(openFiles, "open-files", LimitValue.parseCount),
            stack: try parse(stack, "stack", LimitValue.parseStack),
            processes: processLimit,
            addressSpace: try parse(addressSpace, "address-space", LimitValue.parseSize)
        )
    }
}
