/// Output Corral captured from a pipe: as text when it is valid UTF-8, else as base64.
public struct CapturedOutput: Sendable, Hashable, Codable {
    public var text: String?
    public var base64: String?
    /// Bytes captured (at most the cap).
    public var bytes: Int
    /// The program wrote more than the cap; what is here is the first `bytes` bytes.
    public var truncated: Bool

    public init(_ data: [UInt8], truncated: Bool) {
        if !Self.mostlyLongEscapes(data), let text = String(validating: data, as: UTF8.self) {
            self.text = text
            self.base64 = nil
        } else {
            self.text = nil
            self.base64 = Base64.encode(data)
        }
        self.bytes = data.count
        self.truncated = truncated
    }

    /// Whether the control characters that JSON spells in six bytes (`\u0000`; all below
    /// 0x20 but tab, newline, carriage return, backspace and form feed) would make the text
    /// more than 4 KiB longer in a report than base64 is. Such output, valid UTF-8 though it
    /// is, is given as base64: as text a capture of NULs grew sixfold in a report (64 MiB of
    /// them were 384 MiB of JSON in the server's memory and on the wire). Escapes of two
    /// bytes (newlines, quotes) are not counted: text of short lines stays text, at most
    /// twice its size. Short output with a NUL or two (`/proc/PID/cmdline`) stays text.
    static func mostlyLongEscapes(_ data: [UInt8]) -> Bool {
        var long = 0
        for byte in data where byte < 0x20 {
            switch byte {
            case 0x08, 0x09, 0x0A, 0x0C, 0x0D: continue
            default: long += 1
            }
        }
        // Text: the bytes and 5 more for each long escape; base64: 4 bytes for 3.
        return long * 5 > data.count / 3 + 4096
    }

    /// The captured bytes, decoded back.
    public var data: [UInt8] {
        if let text { return Array(text.utf8) }
        return base64.flatMap(Base64.decode) ?? []
    }
}

/// RFC 4648 base64, without Foundation.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    static func encode(_ data: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((data.count + 2) / 3 * 4)
        var index = 0
        while index + 2 < data.count {
            let value = UInt32(data[index]) << 16 | UInt32(data[index + 1]) << 8 | UInt32(data[index + 2])
            for shift in [18, 12, 6, 0] { out.append(alphabet[Int(value >> UInt32(shift) & 63)]) }
            index += 3
        }
        let rest = data.count - index
        if rest > 0 {
            let value = UInt32(data[index]) << 16 | (rest == 2 ? UInt32(data[index + 1]) << 8 : 0)
            out.append(alphabet[Int(value >> 18 & 63)])
            out.append(alphabet[Int(value >> 12 & 63)])
            out.append(rest == 2 ? alphabet[Int(value >> 6 & 63)] : UInt8(ascii: "="))
            out.append(UInt8(ascii: "="))
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: String) -> [UInt8]? {
        var lookup = [UInt8](repeating: 255, count: 256)
        for (index, character) in alphabet.enumerated() { lookup[Int(character)] = UInt8(index) }
        var out: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for character in text.utf8 where character != UInt8(ascii: "=") {
            let value = lookup[Int(character)]
            guard value != 255 else { return nil }
            buffer = buffer << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(buffer >> UInt32(bits) & 0xff))
            }
        }
        return out
    }
}
