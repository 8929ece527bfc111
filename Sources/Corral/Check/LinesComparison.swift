/// `lines`: the files are equal once whitespace at the end of every line and empty lines at
/// the end of the file are dropped. Streaming, without holding a line: where the two differ,
/// a run of whitespace on either side is skipped and must turn out to end its line.
enum LinesComparison {
    static func compare(_ out: CheckReader, _ ans: CheckReader) -> CheckResult {
        while true {
            CheckReader.skipCommon(out, ans)
            let a = out.peek(), b = ans.peek()
            if a == -1 && b == -1 { return .accepted }
            let aSpace = a >= 0 && isLineSpace(UInt8(a)), bSpace = b >= 0 && isLineSpace(UInt8(b))
            if aSpace || bSpace {
                // Whitespace here on one side or both: it must be at the end of its line.
                let where_ = out.offset
                if aSpace { out.skip(while: isLineSpace) }
                if bSpace { ans.skip(while: isLineSpace) }
                let na = out.peek(), nb = ans.peek()
                let aEnds = na == -1 || na == 0x0A, bEnds = nb == -1 || nb == 0x0A
                guard aEnds && bEnds else { return differ(where_) }
                continue
            }
            // A line ends on one side only: the rest must be empty lines at the end.
            if a == 0x0A || a == -1 || b == 0x0A || b == -1 {
                if (a == 0x0A || a == -1) && (b == 0x0A || b == -1) {
                    let where_ = out.offset
                    if !onlyBlankLeft(out) || !onlyBlankLeft(ans) { return differ(where_) }
                    return .accepted
                }
                return differ(out.offset)
            }
            return differ(out.offset)
        }
    }

    /// Whether nothing but whitespace and newlines is left (it is consumed).
    private static func onlyBlankLeft(_ reader: CheckReader) -> Bool {
        reader.skip(while: isSpace)
        return reader.peek() == -1
    }

    private static func differ(_ offset: Int64) -> CheckResult {
        CheckResult(.wrongAnswer, "the output differs from the answer at byte \(offset)")
    }
}
