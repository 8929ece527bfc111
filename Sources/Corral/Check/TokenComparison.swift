#if canImport(Glibc)
import Glibc
#endif

/// `tokens` and `float`: the whitespace-separated tokens of the output and the answer must
/// be equal, one by one. Streaming: equal stretches are skipped in blocks; with a tolerance,
/// a token is gathered (at most ``maxNumber`` bytes; a longer one is no number and is
/// compared exactly as it streams) and two numbers are compared as numbers.
struct TokenComparison {
    let output: CheckReader
    let answer: CheckReader
    let tolerance: (absolute: Double, relative: Double)?
    static let maxNumber = 256

    func compare() -> CheckResult {
        var token = 0
        while true {
            output.skip(while: isSpace)
            answer.skip(while: isSpace)
            let a = output.peek(), b = answer.peek()
            if a == -1 && b == -1 { return .accepted }
            token += 1
            if a == -1 { return CheckResult(.wrongAnswer, "the output ends before token \(token) of the answer") }
            if b == -1 { return CheckResult(.wrongAnswer, "the output has more tokens than the answer's \(token - 1)") }
            if let tolerance, Self.mayBeNumber(UInt8(a)) || Self.mayBeNumber(UInt8(b)) {
                if let verdict = numbers(token, tolerance) { return verdict }
                continue
            }
            if let verdict = exactToken(token) { return verdict }
        }
    }

    /// Compares one token byte for byte as both stream; nil when equal.
    private func exactToken(_ token: Int) -> CheckResult? {
        while true {
            if tolerance == nil {
                // Equal bytes in blocks, across tokens too (equal is equal); having stopped
                // just after whitespace, the next token starts here: back to the caller.
                let last = CheckReader.skipCommon(output, answer)
                if last >= 0 && isSpace(UInt8(last)) { return nil }
            } else {
                // Never past this token: the next may be a number, compared with tolerance.
                let a = output.peek(), b = answer.peek()
                if a == b && a >= 0 && !isSpace(UInt8(a)) {
                    output.advance()
                    answer.advance()
                    continue
                }
            }
            let a = output.peek(), b = answer.peek()
            let aEnds = a == -1 || isSpace(UInt8(a)), bEnds = b == -1 || isSpace(UInt8(b))
            if aEnds && bEnds { return nil }
            if a != b || aEnds || bEnds { return CheckResult(.wrongAnswer, "token \(token) differs (output byte \(output.offset))") }
        }
    }

    /// Two tokens where at least one may be a number: gathered (up to ``maxNumber`` bytes
    /// each); both numbers: within the tolerance; otherwise byte for byte.
    private func numbers(_ token: Int, _ tolerance: (absolute: Double, relative: Double)) -> CheckResult? {
        let start = output.offset
        var left = [UInt8](), right = [UInt8]()
        let leftWhole = gather(output, into: &left), rightWhole = gather(answer, into: &right)
        if leftWhole && rightWhole, let x = Self.number(left), let y = Self.number(right) {
            let difference = abs(x - y)
            if difference <= tolerance.absolute || difference <= tolerance.relative * abs(y) { return nil }
            return CheckResult(.wrongAnswer, "token \(token): \(String(decoding: left, as: UTF8.self)) is not within the tolerance of \(String(decoding: right, as: UTF8.self))")
        }
        guard left == right else { return CheckResult(.wrongAnswer, "token \(token) differs (output byte \(start))") }
        if leftWhole && rightWhole { return nil }
        if leftWhole != rightWhole { return CheckResult(.wrongAnswer, "token \(token) differs (output byte \(start))") }
        return exactToken(token)
    }

    /// Takes up to ``maxNumber`` bytes of the token; true when that was all of it.
    private func gather(_ reader: CheckReader, into bytes: inout [UInt8]) -> Bool {
        bytes.reserveCapacity(32)
        while bytes.count < Self.maxNumber {
            let next = reader.peek()
            if next == -1 || isSpace(UInt8(next)) { return true }
            bytes.append(UInt8(next))
            reader.advance()
        }
        let next = reader.peek()
        return next == -1 || isSpace(UInt8(next))
    }

    @inline(__always)
    static func mayBeNumber(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || byte == 0x2D || byte == 0x2B || byte == 0x2E
    }

    /// A decimal number (`-1`, `3.25`, `1e-9`): digits, sign, point and exponent only (no
    /// `nan`, `inf` or hexadecimal), all of it taken by strtod.
    static func number(_ bytes: [UInt8]) -> Double? {
        guard !bytes.isEmpty, bytes.allSatisfy({ mayBeNumber($0) || $0 == 0x65 || $0 == 0x45 }),
              bytes.contains(where: { $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return (bytes + [0]).withUnsafeBufferPointer { buffer -> Double? in
            let start = UnsafeRawPointer(buffer.baseAddress!).assumingMemoryBound(to: CChar.self)
            var end: UnsafeMutablePointer<CChar>?
            let value = strtod(start, &end)
            guard let end, UnsafeRawPointer(end) == UnsafeRawPointer(start + bytes.count), value.isFinite else { return nil }
            return value
        }
    }
}
