/// The limits of a run. Every one is optional; `nil` means "not limited by Corral".
public struct Limits: Sendable, Hashable {
    /// User plus system CPU time of every process of the run together.
    public var cpuTime: Duration?
    /// Wall-clock time from spawn until the main process ends. When only ``cpuTime`` is
    /// set, ``effectiveWallTime`` is 2 × cpuTime + 1 s.
    public var wallTime: Duration?
    /// Memory of the run, in bytes: a total over all its processes (the cgroup's memory
    /// limit, no swap). In process-group mode: the address space of each process, `RLIMIT_AS`.
    public var memory: UInt64?
    /// Processes (and threads) of the run at once: the cgroup's `pids.max`.
    public var processes: UInt64?
    /// `RLIMIT_AS` of each process, in bytes.
    public var addressSpace: UInt64?
    /// Bytes any process may write to a file, redirected stdout and stderr included.
    public var output: UInt64?
    /// `RLIMIT_NOFILE`: the highest descriptor number plus one.
    public var openFiles: UInt64?
    /// `RLIMIT_STACK`, in bytes.
    public var stack: UInt64?

    public init(
        cpuTime: Duration? = nil,
        wallTime: Duration? = nil,
        memory: UInt64? = nil,
        output: UInt64? = nil,
        openFiles: UInt64? = nil,
        stack: UInt64? = nil,
        processes: UInt64? = nil,
        addressSpace: UInt64? = nil
    ) {
        self.cpuTime = cpuTime
        self.wallTime = wallTime
        self.memory = memory
        self.output = output
        self.openFiles = openFiles
        self.stack = stack
        self.processes = processes
        self.addressSpace = addressSpace
    }

    /// The wall-clock limit in force: the one given, or 2 × cpuTime + 1 s when only a CPU
    /// limit is given, or none.
    public var effectiveWallTime: Duration? {
        if let wallTime { return wallTime }
        if let cpuTime { return cpuTime * 2 + .seconds(1) }
        return nil
    }

    /// The limits as they are in force, defaults filled in.
    public var effective: Limits {
        var copy = self
        copy.wallTime = effectiveWallTime
        return copy
    }

    /// The smallest memory limit: below it no program starts. A cgroup's limit is whole
    /// pages (1 byte is 0, and exec fails before the program runs), a few pages are gone
    /// in the exec itself, and a dynamically linked program needs about 2 MiB of address
    /// space under `RLIMIT_AS` (process-group mode). 1 MiB runs a shell under a cgroup.
    public static let minimumMemory: UInt64 = 1 << 20

    /// The largest process limit: the kernel's `pids.max` takes at most `PID_MAX_LIMIT`
    /// (4,194,304 on 64-bit Linux), and no more processes can exist anyway.
    public static let maximumProcesses: UInt64 = 4_194_304

    /// `stack` without a limit (RLIM_INFINITY): some runtimes size their threads' stacks by
    /// it. Written "unlimited" in specs, flags and reports.
    public static let unlimitedStack: UInt64 = .max

    func validate() throws(CorralError) {
        func positive(_ value: Duration?, _ name: String) throws(CorralError) {
            if let value, value <= .zero {
                throw CorralError(.invalidJob, "limits.\(name): must be greater than zero")
            }
        }
        func positive(_ value: UInt64?, _ name: String) throws(CorralError) {
            if let value {
                if value == 0 { throw CorralError(.invalidJob, "limits.\(name): must be greater than zero") }
                if value > UInt64(Int64.max) { throw CorralError(.invalidJob, "limits.\(name): too large") }
            }
        }
        try positive(cpuTime, "cpuTime")
        try positive(wallTime, "wallTime")
        try positive(memory, "memory")
        try positive(output, "output")
        try positive(openFiles, "openFiles")
        try positive(stack == Self.unlimitedStack ? nil : stack, "stack")
        try positive(processes, "processes")
        try positive(addressSpace, "addressSpace")
        if let memory, memory < Self.minimumMemory {
            throw CorralError(.invalidJob, "limits.memory: \(memory) bytes is below the smallest memory limit, \(LimitValue.describe(bytes: Self.minimumMemory))")
        }
        if let processes, processes > Self.maximumProcesses {
            throw CorralError(.invalidJob, "limits.processes: \(processes) is above the largest pids.max the kernel takes, \(Self.maximumProcesses)")
        }
    }
}

extension Limits: Codable {
    enum CodingKeys: String, CodingKey {
        case cpuTime, wallTime, memory, output, openFiles, stack, processes, addressSpace
    }

    /// Durations are numbers of seconds or strings such as `"500ms"`; sizes are numbers of
    /// bytes or strings such as `"64M"`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        func duration(_ key: CodingKeys) throws -> Duration? {
            if try !container.contains(key) || container.decodeNil(forKey: key) { return nil }
            if let seconds = try? container.decode(Double.self, forKey: key) {
                do { return try LimitValue.duration(seconds: seconds, context: String(seconds)) } catch {
                    throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: error.description)
                }
            }
            let text = try container.decode(String.self, forKey: key)
            do { return try LimitValue.parseDuration(text) } catch {
                throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: error.description)
            }
        }
        func size(_ key: CodingKeys) throws -> UInt64? {
            if try !container.contains(key) || container.decodeNil(forKey: key) { return nil }
            if let bytes = try? container.decode(UInt64.self, forKey: key) {
                guard bytes > 0 else {
                    throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "must be greater than zero")
                }
                return bytes
            }
            let text = try container.decode(String.self, forKey: key)
            do { return try LimitValue.parseSize(text) } catch {
                throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: error.description)
            }
        }
        cpuTime = try duration(.cpuTime)
        wallTime = try duration(.wallTime)
        memory = try size(.memory)
        output = try size(.output)
        openFiles = try size(.openFiles)
        if (try? container.decodeIfPresent(String.self, forKey: .stack)) == "unlimited" {
            stack = Self.unlimitedStack
        } else {
            stack = try size(.stack)
        }
        processes = try size(.processes)
        addressSpace = try size(.addressSpace)
    }

    /// Encodes durations as seconds and sizes as bytes, the units of the report.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(cpuTime?.seconds, forKey: .cpuTime)
        try container.encode(wallTime?.seconds, forKey: .wallTime)
        try container.encode(memory, forKey: .memory)
        try container.encode(output, forKey: .output)
        try container.encode(openFiles, forKey: .openFiles)
        if stack == Self.unlimitedStack {
            try container.encode("unlimited", forKey: .stack)
        } else {
            try container.encode(stack, forKey: .stack)
        }
        try container.encode(processes, forKey: .processes)
        try container.encode(addressSpace, forKey: .addressSpace)
    }
}

extension Duration {
    /// The duration as a number of seconds.
    public var seconds: Double {
        let (whole, fraction) = components
        return Double(whole) + Double(fraction) / 1e18
    }

    var nanoseconds: Int64 {
        let (whole, fraction) = components
        return whole * 1_000_000_000 + fraction / 1_000_000_000
    }
}
