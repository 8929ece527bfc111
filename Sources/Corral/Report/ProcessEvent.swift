/// One state change of one process of the run, as `wait4` reported it.
public struct ProcessEvent: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable {
        case exited, signaled, stopped, continued
    }

    /// Seconds since the run was spawned.
    public var time: Double
    public var pid: Int32
    public var event: Kind
    /// For `exited`.
    public var exitCode: Int32?
    /// For `signaled` (the signal that ended it) and `stopped` (the signal that stopped it).
    public var signal: Int32?

    public init(time: Double, pid: Int32, event: Kind, exitCode: Int32? = nil, signal: Int32? = nil) {
        self.time = time
        self.pid = pid
        self.event = event
        self.exitCode = exitCode
        self.signal = signal
    }

    enum CodingKeys: String, CodingKey { case time, pid, event, exitCode, signal }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(time, forKey: .time)
        try container.encode(pid, forKey: .pid)
        try container.encode(event, forKey: .event)
        try container.encodeIfPresent(exitCode, forKey: .exitCode)
        try container.encodeIfPresent(signal, forKey: .signal)
    }
}
