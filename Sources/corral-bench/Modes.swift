import Corral

/// One way of running `/bin/true` through the library. A mode performs one run and says
/// whether it ended as expected; the harness times it and interleaves it with the others.
struct BenchMode: Sendable {
    let name: String
    let run: @Sendable () async -> Bool

    init(name: String, run: @escaping @Sendable () async -> Bool) {
        self.name = name
        self.run = run
    }
}

extension BenchMode {
    /// Every mode measured, in the order they run within an iteration and are reported.
    static let all: [BenchMode] = [
        .processGroup,
    ]

    /// A default `Runner` and `Job`: a session and process group of its own.
    static let processGroup = BenchMode(name: "process-group") {
        let job = Job(arguments: ["/bin/true"])
        do {
            let report = try await Runner().run(job)
            return report.status == .ok
        } catch {
            return false
        }
    }
}
