import CCorral
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Where the reaper hands a run's report when the run is over: the task that awaits it
/// (``Runner/run(_:)``), or a thread blocked in ``Runner/runBlocking(_:stopWhenReadable:)``.
enum RunCompletion: Sendable {
    case task(CheckedContinuation<RunReport, Never>)
    case waiter(ReportWaiter)

    func resume(returning report: RunReport) {
        switch self {
        case .task(let continuation): continuation.resume(returning: report)
        case .waiter(let waiter): waiter.deliver(report)
        }
    }
}

/// A report passed from the reaper thread to a thread that waits for it: stored, then the
/// eventfd made readable (no task, no executor between the two threads).
final class ReportWaiter: Sendable {
    let descriptor: Int32
    private let report = Mutex<RunReport?>(nil)

    /// Nil when no eventfd can be had.
    init?() {
        descriptor = corral_eventfd()
        if descriptor < 0 { return nil }
    }

    deinit { _ = close(descriptor) }

    func deliver(_ value: RunReport) {
        report.withLock { $0 = value }
        var one: UInt64 = 1
        _ = write(descriptor, &one, MemoryLayout<UInt64>.size)
    }

    /// The report, once delivered.
    var delivered: RunReport? { report.withLock { $0 } }
}
