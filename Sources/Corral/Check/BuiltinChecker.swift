#if canImport(Glibc)
import Glibc
#endif

/// The comparisons Corral makes itself, streaming both files through fixed buffers.
public enum BuiltinChecker: Sendable, Hashable, Codable {
    /// Byte for byte.
    case exact
    /// Line by line; whitespace at the end of each line (space, tab, CR: so CRLF matches LF)
    /// and empty lines at the end of the file are ignored.
    case lines
    /// The whitespace-separated tokens must be equal; how they are spaced does not matter.
    case tokens
    /// As `tokens`, but two tokens that are both numbers are equal when they differ by at
    /// most `absolute` or by at most `relative` × |the answer's|; other tokens exactly.
    case float(absolute: Double, relative: Double)

    public static let defaultTolerance = 1e-6

    public var name: String {
        switch self {
        case .exact: "exact"
        case .lines: "lines"
        case .tokens: "tokens"
        case .float: "float"
        }
    }

    /// Compares the output with the answer, both read from their start (with `pread`: the
    /// descriptors' offsets are left alone). Blocking: call it off the cooperative pool.
    /// A layout-only difference under `exact` or `lines` (the tokens agree) is a
    /// presentation error.
    public func check(output: Int32, answer: Int32) -> CheckResult {
        check(output: output) { CheckReader(fd: answer) }
    }

    /// The same with the answer given as bytes (a test's inline answer: no file is made for it).
    public func check(output: Int32, answer: [UInt8]) -> CheckResult {
        check(output: output) { CheckReader(bytes: answer) }
    }

    private func check(output: Int32, answer: () -> CheckReader) -> CheckResult {
        let result = compare(CheckReader(fd: output), answer())
        guard result.verdict == .wrongAnswer, self == .exact || self == .lines else { return result }
        let tokens = BuiltinChecker.tokens.compare(CheckReader(fd: output), answer())
        guard tokens.verdict == .accepted else { return result }
        return CheckResult(.presentationError, "\(result.comment) (the tokens match: only the layout differs)")
    }

    private func compare(_ out: CheckReader, _ ans: CheckReader) -> CheckResult {
        let result: CheckResult
        switch self {
        case .exact: result = Self.exact(out, ans)
        case .lines: result = LinesComparison.compare(out, ans)
        case .tokens: result = TokenComparison(output: out, answer: ans, tolerance: nil).compare()
        case .float(let absolute, let relative):
            result = TokenComparison(output: out, answer: ans, tolerance: (absolute, relative)).compare()
        }
        if let error = out.readError ?? ans.readError {
            return CheckResult(.checkerError, "reading \(out.readError != nil ? "the output" : "the answer"): \(SetupFailure.describe(error))")
        }
        return result
    }

    private static func exact(_ out: CheckReader, _ ans: CheckReader) -> CheckResult {
        CheckReader.skipCommon(out, ans)
        let a = out.peek(), b = ans.peek()
        if a == -1 && b == -1 { return .accepted }
        if a == -1 { return CheckResult(.wrongAnswer, "the output ends at byte \(out.offset), before the answer does") }
        if b == -1 { return CheckResult(.wrongAnswer, "the output goes on past the answer's end (byte \(ans.offset))") }
        return CheckResult(.wrongAnswer, "the output differs from the answer at byte \(out.offset)")
    }
}

/// A checker's decision on one test.
public struct CheckResult: Sendable, Hashable {
    public enum Decision: String, Sendable, Hashable, Codable {
        case accepted
        case wrongAnswer = "wrong-answer"
        case presentationError = "presentation-error"
        case checkerError = "checker-error"
    }

    public var verdict: Decision
    /// Why (empty when accepted): where the output first differs, or a custom checker's stderr.
    public var comment: String

    public init(_ verdict: Decision, _ comment: String = "") {
        self.verdict = verdict
        self.comment = comment
    }

    public static let accepted = CheckResult(.accepted)
}
