/// Where a program's standard input comes from.
public struct Input: Sendable, Hashable, Codable, CustomStringConvertible {
    enum Storage: Sendable, Hashable, Codable {
        case null
        case inherit
        case file(String)
        case content([UInt8])
    }
    let storage: Storage

    /// `/dev/null`: the default.
    public static let null = Input(storage: .null)
    /// Corral's own standard input.
    public static let inherit = Input(storage: .inherit)
    /// A file, opened read-only.
    public static func file(_ path: String) -> Input { Input(storage: .file(path)) }
    /// These bytes, from an anonymous in-memory file (no pipe, no proxy, no deadlock).
    public static func content(bytes: [UInt8]) -> Input { Input(storage: .content(bytes)) }
    public static func content(_ text: String) -> Input { Input(storage: .content(Array(text.utf8))) }

    public var description: String {
        switch storage {
        case .null: "null"
        case .inherit: "inherit"
        case .file(let path): path
        case .content(let bytes): "\(bytes.count) bytes of content"
        }
    }
}

/// Where a program's standard output or error goes.
public struct Output: Sendable, Hashable, Codable, CustomStringConvertible {
    enum Storage: Sendable, Hashable, Codable {
        case null
        case inherit
        case file(String)
        case capture(max: UInt64, onLimit: OutputLimitAction)
    }
    let storage: Storage

    /// `/dev/null`.
    public static let null = Output(storage: .null)
    /// Corral's own descriptor: the default.
    public static let inherit = Output(storage: .inherit)
    /// A file, created or truncated. Under an output limit it is cut at exactly the limit.
    public static func file(_ path: String) -> Output { Output(storage: .file(path)) }
    /// Into the report, cut at exactly `max` bytes (`truncated`). A program that writes more
    /// is killed (status `output-limit`), or with `onLimit: .truncate` goes on while Corral
    /// reads and drops the rest; Corral reads the pipe as it fills, so nobody blocks on it.
    public static func capture(max: UInt64, onLimit: OutputLimitAction = .kill) -> Output {
        Output(storage: .capture(max: max, onLimit: onLimit))
    }

    public var description: String {
        switch storage {
        case .null: "null"
        case .inherit: "inherit"
        case .file(let path): path
        case .capture(let max, .kill): "capture (max \(max) bytes)"
        case .capture(let max, .truncate): "capture (max \(max) bytes, then truncated)"
        }
    }
}

/// What happens when a captured stream passes its cap.
public enum OutputLimitAction: String, Sendable, Hashable, Codable, CaseIterable {
    /// The run is killed; its status is `output-limit` (the default).
    case kill
    /// The capture keeps the first bytes and is marked truncated; the rest is read and
    /// dropped, so the program never blocks on a full pipe and ends on its own: the cap is
    /// not a verdict.
    case truncate
}
