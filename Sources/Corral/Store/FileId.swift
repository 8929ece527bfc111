import CCorral

/// The id of a file in the ``FileStore``: the SHA-256 of its content, as 64 lowercase hex
/// digits. Only ``init(_:)`` (which refuses anything else) and the store make one, so an id
/// is always a single safe name in the store's directory: no `/`, no `..`, nothing a
/// filesystem could read two ways.
public struct FileId: Sendable, Hashable, Codable, CustomStringConvertible, Comparable {
    public let hex: String

    /// Why a text is not a file id.
    public struct Invalid: Error, Sendable, Hashable, CustomStringConvertible {
        public let description: String
    }

    public init(_ text: String) throws(Invalid) {
        guard Self.isValid(text) else {
            throw Invalid(description: "\"\(text.prefix(80))\" is not a file id (64 lowercase hex digits, the SHA-256 of the content)")
        }
        hex = text
    }

    /// Exactly 64 bytes, each `0-9` or `a-f`.
    public static func isValid(_ text: String) -> Bool {
        let bytes = text.utf8
        return bytes.count == 64 && bytes.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    init(digest: [UInt8]) {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(64)
        for byte in digest {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        hex = String(decoding: text, as: UTF8.self)
    }

    /// The id of these bytes.
    public static func of(_ bytes: [UInt8]) -> FileId {
        var hasher = ContentHasher()
        hasher.update(bytes)
        return hasher.finish()
    }

    public var description: String { hex }

    public static func < (lhs: FileId, rhs: FileId) -> Bool { lhs.hex < rhs.hex }

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
        try container.encode(hex)
    }
}

/// SHA-256 over bytes as they stream in (the C implementation in CCorral).
struct ContentHasher {
    private var context = corral_sha256()

    init() {
        corral_sha256_init(&context)
    }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        corral_sha256_update(&context, base, bytes.count)
    }

    mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    mutating func finish() -> FileId {
        var digest = [UInt8](repeating: 0, count: 32)
        corral_sha256_final(&context, &digest)
        return FileId(digest: digest)
    }
}
