/// A path inside a process's working directory, as a job spec or a request names it: only
/// ``init(_:)`` makes one, and it refuses anything that could leave the directory or mean
/// two things. Every path of a spec (`files`, `collect`, `dir`, the stream files) is one of
/// these, and Corral opens it only beneath the directory's descriptor
/// (`openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)`), never by
/// joining strings.
public struct SpecPath: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The components, each non-empty, not `.` or `..`, without `/` or NUL.
    public let components: [String]

    /// Why a text is not a ``SpecPath``: one sentence, for a spec error.
    public struct Invalid: Error, Sendable, Hashable, CustomStringConvertible {
        public let description: String
    }

    /// The longest path, and component, a spec may name (the kernel's PATH_MAX and NAME_MAX).
    static let maxLength = 4095
    static let maxComponentLength = 255

    public init(_ text: String) throws(Invalid) {
        guard !text.isEmpty else { throw Invalid(description: "must not be empty") }
        guard !text.utf8.contains(0) else { throw Invalid(description: "contains a NUL byte") }
        guard !text.hasPrefix("/") else { throw Invalid(description: "must be relative to the working directory, not absolute") }
        guard text.utf8.count <= Self.maxLength else { throw Invalid(description: "is longer than \(Self.maxLength) bytes") }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        for part in parts {
            switch part {
            case "..": throw Invalid(description: "must not contain \"..\"")
            case ".": throw Invalid(description: "must not contain \".\" components")
            case "": throw Invalid(description: "must not contain an empty component (\"//\" or a trailing \"/\")")
            default:
                guard part.utf8.count <= Self.maxComponentLength else {
                    throw Invalid(description: "has a component longer than \(Self.maxComponentLength) bytes")
                }
            }
        }
        components = parts
    }

    /// The path as written: components joined by `/` (relative, for the kernel's path
    /// resolution beneath a descriptor and for messages).
    public var description: String { components.joined(separator: "/") }

    /// The directory holding the last component, if any.
    var parent: SpecPath? {
        components.count > 1 ? SpecPath(trusted: Array(components.dropLast())) : nil
    }

    var name: String { components[components.count - 1] }

    private init(trusted components: [String]) {
        self.components = components
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do {
            try self.init(text)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
