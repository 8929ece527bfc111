#if canImport(Glibc)
import Glibc
#endif

/// `tokens` and `float`: the whitespace-separated tokens of the output and the answer must
/// be equal, one by one. Streaming: equal stretches are skipped in blocks whatever they hold
/// (equal is equal); where the two differ, whitespace is skipped on both sides, and with a
/// tolerance both readers step back to the start of the token they differ in and compare it
/// as numbers when both are (a token of at most ``maxNumber`` bytes).
struct TokenComparison {
    let output: CheckReader
    let answer: CheckReader
    let tolerance: (absolute: Double, relative: Double)?
    static let maxNumber = 256

    func compare() -> CheckResult {
        while true {
            let last = CheckReader.skipCommon(output, answer)
            var a = output.peek(), b = answer.peek()
            if a == -1 && b == -1 { return .accepted }
            let aEnds = a == -1 || isSpace(UInt8(a)), bEnds = b == -1 || isSpace(UInt8(b))
            if last >= 0 && !isSpace(UInt8(last)) {
                // They differ inside a token both have begun alike.
                if aEnds && bEnds { continue } // both tokens ended there: equal
                guard tolerance != nil else { return differ() }
                let behind = output.tokenBytesBehind(limit: Self.maxNumber + 1)
                guard behind <= Self.maxNumber else { return differ() } // too long for a number: exact
                output.rewind(behind)
                answer.rewind(behind)
                if let verdict = token() { return verdict }
                continue
            }
            output.skip(while: isSpace)
            answer.skip(while: isSpace)
            a = output.peek()
            b = answer.peek()
            if a == -1 && b == -1 { return .accepted }
            if a == -1 { return CheckResult(.wrongAnswer, "the output has fewer tokens than the answer (it ends at byte \(output.offset))") }
            if b == -1 { return CheckResult(.wrongAnswer, "the output has more tokens than the answer (from byte \(output.offset))") }
            if tolerance != nil, Self.mayBeNumber(UInt8(a)) || Self.mayBeNumber(UInt8(b)) {
                if let verdict = token() { return verdict }
                continue
            }
            if a != b { return differ() }
        }
    }

    private func differ(at offset: Int64? = nil) -> CheckResult {
        CheckResult(.wrongAnswer, "the output's token at byte \(offset ?? output.offset) differs from the answer's")
    }

    /// One token from its start on both sides, where at least one may be a number: gathered
    /// (up to ``maxNumber`` bytes each); both numbers: within the tolerance; otherwise byte
    /// for byte. Nil when equal.
    private func token() -> CheckResult? {
        let start = output.offset
        var left = [UInt8](), right = [UInt8]()
        let leftWhole = gather(output, into: &left), rightWhole = gather(answer, into: &right)
        if leftWhole && rightWhole, let tolerance, let x = Self.number(left), let y = Self.number(right) {
            let difference = abs(x - y)
            if difference <= tolerance.absolute || difference <= tolerance.relative * abs(y) { return nil }
            return CheckResult(.wrongAnswer, "the output's \(String(decoding: left, as: UTF8.self)) at byte \(start) is not within the tolerance of \(String(decoding: right, as: UTF8.self))")
        }
        guard left == right, leftWhole == rightWhole else { return differ(at: start) }
        if leftWhole { return nil }
        // Two long tokens, alike so far: the rest byte for byte.
        while true {
            let a = output.peek(), b = answer.peek()
            let aEnds = a == -1 || isSpace(UInt8(a)), bEnds = b == -1 || isSpace(UInt8(b))
            if aEnds && bEnds { return nil }
            if a != b { return differ(at: start) }
            output.advance()
            answer.advance()
        }
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
