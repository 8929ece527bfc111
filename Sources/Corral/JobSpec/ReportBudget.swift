import Synchronization

/// What a job's report may hold of captured output and collected files together (one budget
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

    /// Cuts a run's captured stdout and stderr to what is left of the budget.
    func trim(_ report: inout RunReport) {
        trim(&report.stdout)
        trim(&report.stderr)
    }
}
