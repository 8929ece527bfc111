import Synchronization

/// What a job's report may hold of captured output, collected files and tests' comments together (one budget
/// for a whole job of steps: its steps, their tests and checkers). Each process's capture and
/// each collected file is bounded by its own `max`; without this, a client multiplied those
/// bounds at will: one 64 MiB file (a sparse one costs the program nothing) collected a thousand
/// times, or a thousand tests each keeping 64 MiB of stderr, all held in the runner's memory
/// for the report. Past the budget a capture or a collected file is cut (`truncated: true`);
/// a collected file is read only up to what is left.
final class ReportBudget: Sendable {
    private let left: Mutex<UInt64>

    init(_ bytes: UInt64) {
        left = Mutex(bytes)
    }

    /// Up to `bytes` of what is left, taken.
    func take(_ bytes: UInt64) -> UInt64 {
        left.withLock { left in
            let granted = min(bytes, left)
            left -= granted
            return granted
        }
    }

    /// Gives back what was taken and not used.
    func giveBack(_ bytes: UInt64) {
        left.withLock { $0 += bytes }
    }

    /// Cuts a capture to what is left of the budget.
    func trim(_ output: inout CapturedOutput?) {
        guard let kept = output, kept.bytes > 0 else { return }
        let granted = take(UInt64(kept.bytes))
        if granted < UInt64(kept.bytes) { output = CapturedOutput(Array(kept.data.prefix(Int(granted))), truncated: true) }
    }

    /// What of each test's comment is not charged: where a built-in checker found the output
    /// differs, or a run's message, stays readable however the captures used up the budget
    /// (at most this much per test, and a job has at most 64 steps of `--max-tests` tests).
    /// A custom checker's or interactor's comment is its captured stderr, which the budget
    /// already cut as any capture.
    static let freeCommentBytes: UInt64 = 256

    /// Cuts a test's comment (a custom checker's or an interactor's stderr, up to 4 KiB a
    /// test; thousands of tests) to its free part and what is left of the budget, at a
    /// Unicode scalar's boundary (not a character's: one long cluster of combining marks
    /// would empty it).
    func trim(comment: inout String) {
        let bytes = UInt64(comment.utf8.count)
        guard bytes > Self.freeCommentBytes else { return }
        let granted = take(bytes - Self.freeCommentBytes)
        guard granted < bytes - Self.freeCommentBytes else { return }
        let allowed = Self.freeCommentBytes + granted
        var kept = String.UnicodeScalarView()
        var used: UInt64 = 0
        for scalar in comment.unicodeScalars {
            let size = UInt64(UTF8.width(scalar))
            if used + size > allowed { break }
            kept.append(scalar)
            used += size
        }
        giveBack(allowed - max(used, Self.freeCommentBytes))
        comment = String(kept)
    }

    /// Cuts a run's captured stdout and stderr to what is left of the budget.
    func trim(_ report: inout RunReport) {
        trim(&report.stdout)
        trim(&report.stderr)
    }
}
