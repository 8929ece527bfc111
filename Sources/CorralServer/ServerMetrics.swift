import Corral
import CorralQueue
import CoreMetrics
import Prometheus
import Synchronization

/// The server's metrics, through swift-metrics into a Prometheus registry of its own (so
/// several servers in one process, as in tests, never share counts). Every name starts
/// with `corral_`.
final class ServerMetrics: Sendable {
    enum Rejection: String, CaseIterable, Sendable {
        case badRequest = "bad-request"
        case tooLarge = "too-large"
        case unauthorized
        case overloaded
        case shuttingDown = "shutting-down"
        /// 503: the bodies in flight take the memory budget for them.
        case bodyBudget = "body-budget"
        /// A connection past `--max-connections` (503, closed).
        case tooManyConnections = "too-many-connections"
    }

    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let wallTime: CoreMetrics.Timer
    private let cpuTime: CoreMetrics.Timer
    private let memoryPeak: CoreMetrics.Recorder
    private let queueDepth: CoreMetrics.Gauge
    private let inFlight: CoreMetrics.Gauge
    private let bodyBytesInFlight: CoreMetrics.Gauge
    private let setupErrors: CoreMetrics.Counter
    private let runCounters: [RunStatus: CoreMetrics.Counter]
    private let rejectionCounters: [Rejection: CoreMetrics.Counter]
    private let testCounters: [TestVerdict: CoreMetrics.Counter]
    private let storeBytes: CoreMetrics.Gauge
    private let storeFiles: CoreMetrics.Gauge
    private let storeEvictions: CoreMetrics.Counter
    private let storeEvictionsSeen = Mutex<UInt64>(0)
    /// Jobs of the durable queue in each state (read from the queue at each scrape).
    private let jobStates: [JobState: CoreMetrics.Gauge]
    private let leaseExpiries: CoreMetrics.Counter
    private let callbackAttempts: [CallbackSender.Result: CoreMetrics.Counter]

    init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        let seconds: [Duration] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300].map {
            .milliseconds(Int64($0 * 1000))
        }
        factory.durationHistogramBuckets = ["corral_run_wall_seconds": seconds, "corral_run_cpu_seconds": seconds]
        factory.valueHistogramBuckets = [
            "corral_run_memory_peak_bytes": [1, 4, 16, 64, 256, 1024, 4096, 16384].map { Double($0 << 20) },
        ]
        self.factory = factory
        wallTime = CoreMetrics.Timer(label: "corral_run_wall_seconds", factory: factory)
        cpuTime = CoreMetrics.Timer(label: "corral_run_cpu_seconds", factory: factory)
        memoryPeak = CoreMetrics.Recorder(label: "corral_run_memory_peak_bytes", dimensions: [], aggregate: true, factory: factory)
        queueDepth = CoreMetrics.Gauge(label: "corral_queue_depth", factory: factory)
        inFlight = CoreMetrics.Gauge(label: "corral_runs_in_flight", factory: factory)
        bodyBytesInFlight = CoreMetrics.Gauge(label: "corral_body_bytes_in_flight", factory: factory)
        setupErrors = CoreMetrics.Counter(label: "corral_setup_errors_total", factory: factory)
        // Every series exists from the start, at zero.
        runCounters = Dictionary(uniqueKeysWithValues: RunStatus.allCases.map {
            ($0, CoreMetrics.Counter(label: "corral_runs_total", dimensions: [("status", $0.rawValue)], factory: factory))
        })
        rejectionCounters = Dictionary(uniqueKeysWithValues: Rejection.allCases.map {
            ($0, CoreMetrics.Counter(label: "corral_rejected_requests_total", dimensions: [("reason", $0.rawValue)], factory: factory))
        })
        testCounters = Dictionary(uniqueKeysWithValues: TestVerdict.allCases.map {
            ($0, CoreMetrics.Counter(label: "corral_tests_total", dimensions: [("verdict", $0.rawValue)], factory: factory))
        })
        storeBytes = CoreMetrics.Gauge(label: "corral_file_store_bytes", factory: factory)
        storeFiles = CoreMetrics.Gauge(label: "corral_file_store_files", factory: factory)
        storeEvictions = CoreMetrics.Counter(label: "corral_file_store_evictions_total", factory: factory)
        storeBytes.record(0)
        storeFiles.record(0)
        jobStates = Dictionary(uniqueKeysWithValues: JobState.allCases.map {
            ($0, CoreMetrics.Gauge(label: "corral_jobs", dimensions: [("state", $0.rawValue)], factory: factory))
        })
        leaseExpiries = CoreMetrics.Counter(label: "corral_lease_expiries_total", factory: factory)
        callbackAttempts = Dictionary(uniqueKeysWithValues: CallbackSender.Result.allCases.map {
            ($0, CoreMetrics.Counter(label: "corral_callback_attempts_total", dimensions: [("result", $0.rawValue)], factory: factory))
        })
        for gauge in jobStates.values { gauge.record(0) }
        queueDepth.record(0)
        inFlight.record(0)
        bodyBytesInFlight.record(0)
    }

    private func runs(_ status: RunStatus) -> CoreMetrics.Counter { runCounters[status]! }

    private func rejections(_ reason: Rejection) -> CoreMetrics.Counter { rejectionCounters[reason]! }

    /// A job that ran: its status, wall time, CPU time (all its processes) and memory peak
    /// (the sum of its processes' peaks).
    func record(_ report: JobReport) {
        runs(report.status).increment()
        wallTime.recordNanoseconds(Int64(report.wallTime * 1e9))
        cpuTime.recordNanoseconds(Int64(report.processes.reduce(0) { $0 + $1.report.cpuTime } * 1e9))
        memoryPeak.record(Double(report.processes.reduce(0) { $0 + $1.report.memoryPeak }))
        if report.status == .setupError { setupErrors.increment() }
    }

    /// A job of steps: its first status other than `ok` (else `ok`), wall time, every run's CPU
    /// time and memory peak, and one count per test by its verdict.
    func record(_ report: StepsReport) {
        let runs = report.steps.flatMap { $0.processes + $0.tests.flatMap(\.processes) }
        let status = report.steps.first { $0.status != .ok }?.status ?? .ok
        self.runs(status).increment()
        wallTime.recordNanoseconds(Int64(report.wallTime * 1e9))
        cpuTime.recordNanoseconds(Int64(runs.reduce(0) { $0 + $1.report.cpuTime } * 1e9))
        memoryPeak.record(Double(runs.reduce(0) { $0 + $1.report.memoryPeak }))
        if status == .setupError { setupErrors.increment() }
        for test in report.steps.flatMap(\.tests) { testCounters[test.verdict]!.increment() }
    }

    /// A job that could not even be set up (the library threw).
    func recordSetupError() {
        runs(.setupError).increment()
        setupErrors.increment()
    }

    func rejected(_ reason: Rejection) {
        rejections(reason).increment()
    }

    /// What the requests in flight hold of the body budget (`--max-bodies-in-flight`).
    func bodyBytes(_ bytes: Int) {
        bodyBytesInFlight.record(Double(bytes))
    }

    func update(_ counts: Dispatcher.Counts) {
        queueDepth.record(Double(counts.queued))
        inFlight.record(Double(counts.running))
    }

    /// The file store's files and bytes, and the evictions since the last call.
    func fileStore(_ statistics: FileStore.Statistics) {
        storeBytes.record(Double(statistics.bytes))
        storeFiles.record(Double(statistics.files))
        let new = storeEvictionsSeen.withLock { seen in
            defer { seen = max(seen, statistics.evictions) }
            return statistics.evictions > seen ? statistics.evictions - seen : 0
        }
        if new > 0 { storeEvictions.increment(by: Int64(new)) }
    }

    /// The durable queue's jobs in each state.
    func jobs(_ counts: [JobState: Int]) {
        for (state, count) in counts { jobStates[state]?.record(Double(count)) }
    }

    /// A worker here took over a job whose lease had run out (its worker died or hung).
    func leaseExpired() {
        leaseExpiries.increment()
    }

    /// One attempt to deliver a job's callback, and how it went.
    func callback(_ result: CallbackSender.Result) {
        callbackAttempts[result]?.increment()
    }

    /// The Prometheus text exposition format.
    func exposition() -> String {
        registry.emitToString()
    }
}
