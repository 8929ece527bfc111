import Corral
#if canImport(Glibc)
import Glibc
#endif

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
    static let all: [BenchMode] = geteuid() == 0 ? every : [.processGroup, .cgroup]

    /// Every mode there is, whether or not this user can run it (for `--modes`).
    static let every: [BenchMode] = [.processGroup, .cgroup, .isolated, .isolatedHostNetwork]

    /// The modes `--modes` names (nil: ``all``), in the order of ``every``.
    static func selected(_ names: [String]?) -> [BenchMode] {
        guard let names else { return all }
        return every.filter { names.contains($0.name) }
    }

    /// A session and process group of its own, no cgroup.
    static let processGroup = runner("process-group", RunnerConfiguration(containment: .processGroup))

    /// A cgroup of its own too (v2 with memory and pids, else v1), created and removed per run.
    static let cgroup = runner("cgroup", RunnerConfiguration(containment: .automatic, requireCgroup: true))

    /// The cgroup mode plus namespaces and Corral's init (root only).
    static let isolated = runner("isolated", RunnerConfiguration(containment: .automatic, requireCgroup: true),
                                 isolation: Isolation())

    /// The same without a network namespace (its creation and teardown are the main cost).
    static let isolatedHostNetwork = runner("isolated-host-network", RunnerConfiguration(containment: .automatic, requireCgroup: true),
                                            isolation: Isolation(network: .host))

    static func runner(_ name: String, _ configuration: RunnerConfiguration, isolation: Isolation? = nil) -> BenchMode {
        let job = Job(arguments: ["/bin/true"], isolation: isolation)
        let runner = Runner(configuration: configuration)
        return BenchMode(name: name) {
            do {
                let report = try await runner.run(job)
                return report.status == .ok
            } catch {
                return false
            }
        }
    }
}
