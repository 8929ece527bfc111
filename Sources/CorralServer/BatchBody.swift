import Foundation

/// `{"jobs": [SPEC, ...]}`: the byte ranges of the specs, each then read by the strict spec
/// parser on its own (so a batch's job is checked exactly as a single one). Only this shape
/// is taken: one key, `jobs`, spelled plainly, holding an array.
enum BatchBody {
    static let maximumJobs = 1000

    struct Malformed: Error {
        let message: String
    }

    static func split(_ body: Data) throws(Malformed) -> [Data] {
        let bytes = [UInt8](body)
        var index = 0
        func space() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }
        func expect(_ byte: UInt8) throws(Malformed) {
            space()
            guard index < bytes.count, bytes[index] == byte else { throw shape() }
            index += 1
        }
        try expect(UInt8(ascii: "{"))
        space()
        let key = Array(#""jobs""#.utf8)
        guard bytes.count - index >= key.count, Array(bytes[index..<index + key.count]) == key else { throw shape() }
        index += key.count
        try expect(UInt8(ascii: ":"))
        try expect(UInt8(ascii: "["))
        var specs: [Data] = []
        space()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
        } else {
            while true {
                space()
                let start = index
                try skipValue(bytes, &index)
                specs.append(Data(bytes[start..<index]))
                if specs.count > maximumJobs { throw Malformed(message: "a batch holds at most \(maximumJobs) jobs") }
                space()
                guard index < bytes.count else { throw shape() }
                if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                if bytes[index] == UInt8(ascii: "]") { index += 1; break }
                throw shape()
            }
        }
        try expect(UInt8(ascii: "}"))
        space()
        guard index == bytes.count else { throw shape() }
        guard !specs.isEmpty else { throw Malformed(message: "jobs: the batch is empty") }
        return specs
    }

    private static func shape() -> Malformed {
        Malformed(message: #"a batch must be {"jobs": [SPEC, ...]} and nothing else"#)
    }

    /// Moves past one JSON value (strings and nesting followed; the spec parser checks the rest).
    private static func skipValue(_ bytes: [UInt8], _ index: inout Int) throws(Malformed) {
        var depth = 0
        var inString = false
        let start = index
        while index < bytes.count {
            let byte = bytes[index]
            if inString {
                if byte == UInt8(ascii: "\\") { index += 2; continue }
                if byte == UInt8(ascii: "\"") { inString = false }
                index += 1
                if depth == 0 { return }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if depth == 0 {
                    guard index > start else { throw shape() }
                    return
                }
                depth -= 1
                if depth == 0 { index += 1; return }
            case UInt8(ascii: ","):
                if depth == 0 {
                    guard index > start else { throw shape() }
                    return
                }
            default: break
            }
            index += 1
        }
        if depth != 0 || inString || index == start { throw shape() }
    }
}
