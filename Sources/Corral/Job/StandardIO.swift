/// Where a program's standard input comes from.
public struct Input: Sendable, Hashable, Codable, CustomStringConvertible {
    enum Storage: Sendable, Hashable, Codable {
        case null
        case inherit
        case file(String)
    }
    let storage: Storage

    /// `/dev/null`: the default.
    public static let null = Input(storage: .null)
    /// Corral's own standard input.
    public static let inherit = Input(storage: .inherit)
    /// A file, opened read-only.
    public static func file(_ path: String) -> Input { Input(storage: .file(path)) }

    public var description: String {
        switch storage {
        case .null: "null"
        case .inherit: "inherit"
        case .file(let path): path
        }
    }
}

/// Where a program's standard output or error goes.
public struct Output: Sendable, Hashable, Codable, CustomStringConvertible {
    enum Storage: Sendable, Hashable, Codable {
        case null
        case inherit
        case file(String)
    }
    let storage: Storage

    /// `/dev/null`.
    public static let null = Output(storage: .null)
    /// Corral's own descriptor: the default.
    public static let inherit = Output(storage: .inherit)
    /// A file, created or truncated. Under an output limit it is cut at exactly the limit.
    public static func file(_ path: String) -> Output { Output(storage: .file(path)) }

    public var description: String {
        switch storage {
        case .null: "null"
        case .inherit: "inherit"
        case .file(let path): path
        }
    }
}
