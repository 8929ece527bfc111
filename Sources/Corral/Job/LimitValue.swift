/// Why a limit value was refused.
public struct LimitParseError: Error, Sendable, Hashable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Parses the values of limit flags and spec fields. Strict: a malformed, negative, zero,
/// NaN, infinite or overflowing value is refused, never clamped.
public enum LimitValue {
    /// The largest duration Corral accepts: what fits in nanoseconds as a signed 64-bit
    /// number, rounded down to a whole second.
    static let maximumSeconds: Double = 9_223_372_036

    /// A duration as reports and messages write it: `1.5 s`, `60 s`.
    public static func describe(_ duration: Duration) -> String {
        "\(Verdict.format(duration)) s"
    }

    /// A size as reports and messages write it: `256 MiB`, `1.5 KiB`, `100 bytes`.
    public static func describe(bytes: UInt64) -> String {
        Verdict.format(bytes: bytes)
    }

    /// `2`, `1.5`, `500ms`, `2s`, `1m` (also `us`, `h`).
    public static func parseDuration(_ text: String) throws(LimitParseError) -> Duration {
        let units: [(suffix: String, seconds: Double)] = [("ms", 1e-3), ("us", 1e-6), ("s", 1), ("m", 60), ("h", 3600)]
        var number = Substring(text)
        var scale = 1.0
        for unit in units where text.hasSuffix(unit.suffix) {
            number = text.dropLast(unit.suffix.count)
            scale = unit.seconds
            break
        }
        let value = try decimal(number, original: text, kind: "duration", hint: "a number of seconds, or 500ms, 2s, 1m")
        return try duration(seconds: value * scale, context: text)
    }

    static func duration(seconds: Double, context: String) throws(LimitParseError) -> Duration {
        guard seconds.isFinite else { throw LimitParseError("invalid duration '\(context)': not a finite number") }
        guard seconds > 0 else { throw LimitParseError("invalid duration '\(context)': must be greater than zero") }
        guard seconds <= maximumSeconds else { throw LimitParseError("invalid duration '\(context)': too large") }
        let nanoseconds = (seconds * 1e9).rounded()
        guard nanoseconds >= 1 else { throw LimitParseError("invalid duration '\(context)': shorter than a nanosecond") }
        return .nanoseconds(Int64(nanoseconds))
    }

    /// Bytes, or with `K`/`M`/`G`/`T` (also `KiB`, `MiB`, `GiB`, `TiB`, and a trailing `B`),
    /// binary multiples.
    /// A stack size, or "unlimited" (``Limits/unlimitedStack``).
    public static func parseStack(_ text: String) throws(LimitParseError) -> UInt64 {
        text == "unlimited" ? Limits.unlimitedStack : try parseSize(text)
    }

    public static func parseSize(_ text: String) throws(LimitParseError) -> UInt64 {
        let units: [(suffix: String, shift: UInt64)] = [
            ("KiB", 10), ("MiB", 20), ("GiB", 30), ("TiB", 40),
            ("KB", 10), ("MB", 20), ("GB", 30), ("TB", 40),
            ("K", 10), ("M", 20), ("G", 30), ("T", 40), ("B", 0),
        ]
        var number = Substring(text)
        var shift: UInt64 = 0
        for unit in units where text.uppercased().hasSuffix(unit.suffix.uppercased()) {
            number = text.dropLast(unit.suffix.count)
            shift = unit.shift
            break
        }
        let hint = "bytes, or a number with K, M or G"
        if !number.contains("."), let whole = try? integer(number, original: text, kind: "size", hint: hint) {
            guard whole > 0 else { throw LimitParseError("invalid size '\(text)': must be greater than zero") }
            let (bytes, overflow) = whole.multipliedReportingOverflow(by: 1 << shift)
            guard !overflow, bytes <= UInt64(Int64.max) else { throw LimitParseError("invalid size '\(text)': too large") }
            return bytes
        }
        let value = try decimal(number, original: text, kind: "size", hint: hint)
        let bytes = (value * Double(UInt64(1) << shift)).rounded(.down)
        guard bytes.isFinite, bytes < 9.2e18 else { throw LimitParseError("invalid size '\(text)': too large") }
        guard bytes >= 1 else { throw LimitParseError("invalid size '\(text)': must be at least one byte") }
        return UInt64(bytes)
    }

    /// A whole number greater than zero (descriptors, processes).
    public static func parseCount(_ text: String) throws(LimitParseError) -> UInt64 {
        let value = try integer(Substring(text), original: text, kind: "number", hint: "a whole number")
        guard value > 0 else { throw LimitParseError("invalid number '\(text)': must be greater than zero") }
        guard value <= UInt64(Int64.max) else { throw LimitParseError("invalid number '\(text)': too large") }
        return value
    }

    private static func integer(_ digits: Substring, original: String, kind: String, hint: String) throws(LimitParseError) -> UInt64 {
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw malformed(original, kind: kind, hint: hint)
        }
        guard let value = UInt64(digits) else { throw LimitParseError("invalid \(kind) '\(original)': too large") }
        return value
    }

    private static func decimal(_ digits: Substring, original: String, kind: String, hint: String) throws(LimitParseError) -> Double {
        let dots = digits.filter { $0 == "." }.count
        guard !digits.isEmpty, dots <= 1, digits != ".",
              digits.allSatisfy({ ($0.isASCII && $0.isNumber) || $0 == "." })
        else {
            if original.hasPrefix("-") {
                throw LimitParseError("invalid \(kind) '\(original)': must be greater than zero")
            }
            throw malformed(original, kind: kind, hint: hint)
        }
        guard let value = Double(digits) else { throw malformed(original, kind: kind, hint: hint) }
        return value
    }

    private static func malformed(_ text: String, kind: String, hint: String) -> LimitParseError {
        if text.hasPrefix("-") {
            return LimitParseError("invalid \(kind) '\(text)': must be greater than zero")
        }
        return LimitParseError("invalid \(kind) '\(text)': expected \(hint)")
    }
}
