import CCorral
#if canImport(Glibc)
import Glibc
#endif

/// Signals a program starts with ignored (`SIG_IGN`), by name: e.g. `SIGPIPE` for a writer
/// that must see EPIPE instead of dying when its reader has gone (an interactor). Every other
/// signal starts at its default and the mask is empty, whatever Corral itself ignores. An
/// ignored disposition survives execve, so the program (and what it execs) keeps it until it
/// changes it. SIGKILL and SIGSTOP cannot be ignored and are refused, as is an unknown name.
public struct SignalSet: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Bit N-1 for signal N, the layout of `SigIgn` in `/proc/PID/status`.
    public private(set) var mask: UInt64 = 0

    public init() {}

    /// Each name as `SIGPIPE` (the standard signals 1 to 31, e.g. `SIGHUP`, `SIGINT`,
    /// `SIGUSR1`, `SIGTERM`, `SIGXFSZ`); a name given twice counts once.
    public init(names: [String]) throws(SignalSetError) {
        for name in names { try insert(name: name) }
    }

    public mutating func insert(name: String) throws(SignalSetError) {
        guard let number = SignalSet.number(of: name) else {
            throw SignalSetError("unknown signal \"\(name)\" (give a name such as \"SIGPIPE\": \(SignalSet.knownNames.joined(separator: ", ")))")
        }
        guard number != SIGKILL && number != SIGSTOP else {
            throw SignalSetError("\(name) cannot be ignored (the kernel does not allow it)")
        }
        mask |= 1 << UInt64(number - 1)
    }

    public var isEmpty: Bool { mask == 0 }

    /// The signal numbers, lowest first.
    public var signals: [Int32] {
        (1...64).filter { mask & (1 << UInt64($0 - 1)) != 0 }.map { Int32($0) }
    }

    public var names: [String] {
        signals.map { corral_signal_name($0).map { String(cString: $0) } ?? "signal \($0)" }
    }

    public var description: String { names.joined(separator: ", ") }

    /// The names that can be given: every standard signal but SIGKILL and SIGSTOP.
    public static var knownNames: [String] {
        (Int32(1)..<32).compactMap { number -> String? in
            guard number != SIGKILL, number != SIGSTOP, let name = corral_signal_name(number) else { return nil }
            return String(cString: name)
        }
    }

    static func number(of name: String) -> Int32? {
        guard name.hasPrefix("SIG") else { return nil }
        for number in Int32(1)..<32 {
            if let known = corral_signal_name(number), String(cString: known) == name { return number }
        }
        return nil
    }

    // As a list of names in JSON, like the spec says it.
    public init(from decoder: any Decoder) throws {
        let names = try decoder.singleValueContainer().decode([String].self)
        do {
            try self.init(names: names)
        } catch {
            throw DecodingError.dataCorrupted(DecodingError.Context(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(names)
    }
}

/// A signal name that cannot be ignored, or that no signal has.
public struct SignalSetError: Error, Sendable, Hashable, CustomStringConvertible {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}
