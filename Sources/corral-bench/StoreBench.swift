import Corral
import Foundation

/// What a stored 10 MiB input adds to a run that uses it: the same one-process job
/// (`/bin/true`) with and without `files: [{"fileId"}]`, interleaved, through the library's
/// job runner with a file store under `$TMPDIR` (the job directories' file system, as a
/// server with `--max-disk none` or `corral run --spec --file-store` has it), and once more
/// with a working directory that is a tmpfs of its own (`--max-disk`, as root), where the
/// file is copied.
struct StoreBenchResult: Sendable {
    let runs: Int
    let size: Int
    /// Median µs of a run without the file, with it, and with it in a tmpfs job directory.
    let without: Double
    let with: Double
    let withTmpfs: Double?

    var costMicros: Double { with - without }

    var json: String {
        "{\"runs\": \(runs), \"bytes\": \(size), \"withoutMicros\": \(String(format: "%.1f", without)), "
            + "\"withMicros\": \(String(format: "%.1f", with)), \"costMicros\": \(String(format: "%.1f", costMicros))"
            + (withTmpfs.map { ", \"tmpfsWorkdirCostMicros\": \(String(format: "%.1f", $0 - without))" } ?? "") + "}"
    }

    var table: String {
        "stored \(size >> 20) MiB input, \(runs) runs each: \(String(format: "%.1f", costMicros)) µs per run that uses it "
            + "(\(String(format: "%.1f", without)) → \(String(format: "%.1f", with)) µs)"
            + (withTmpfs.map { "; into a tmpfs job directory (copied): \(String(format: "%.1f", $0 - without)) µs" } ?? "")
    }
}

enum StoreBench {
    static func measure(runs: Int) async -> StoreBenchResult? {
        let directory = NSTemporaryDirectory() + "corral-bench-store-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let size = 10 << 20
        guard let store = try? FileStore(directory: directory, maxBytes: 64 << 20, maxFileBytes: 32 << 20),
              let stored = try? store.put((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 13) }) else { return nil }
        let plain = JobSpec(processes: [ProcessSpec(name: "p0", args: ["/bin/true"])])
        var using = plain
        using.files = [FileSpec(path: try! SpecPath("input.bin"), source: .stored(stored.id))]
        let runner = JobRunner(fileStore: store)
        let tmpfsRunner = geteuid() == 0 ? JobRunner(workdirLimit: 64 << 20, fileStore: store) : nil
        var samples: [[Double]] = [[], [], []]
        for round in 0..<(runs + 20) {
            for (index, (spec, runner)) in [(plain, runner), (using, runner), (using, tmpfsRunner)].enumerated() {
                guard let runner else { continue }
                let start = monotonicNanos()
                guard let report = try? await runner.run(spec), report.status == .ok else { return nil }
                if round >= 20 { samples[index].append(Double(monotonicNanos() - start) / 1e3) }
            }
        }
        return StoreBenchResult(runs: runs, size: size, without: Summary(samples[0]).median, with: Summary(samples[1]).median,
                                withTmpfs: samples[2].isEmpty ? nil : Summary(samples[2]).median)
    }
}

/// What a stored 10 MiB test input adds to each test that reads it as its stdin
/// (`{"stdin": {"fileId"}}`): a step of `tests` tests of `/bin/true` (isolated or not) with that stdin against
/// the same step with an empty `content` stdin, interleaved job by job; the cost per test is
/// the median of the paired differences divided by the number of tests.
struct StoredTestInputResult: Sendable {
    /// `isolated` or `plain`.
    let mode: String
    let jobs: Int
    let tests: Int
    let size: Int
    /// Median ms of a job of `tests` tests without the input and with it.
    let without: Double
    let with: Double
    let costMicrosPerTest: Double

    var json: String {
        "{\"mode\": \"\(mode)\", \"jobs\": \(jobs), \"tests\": \(tests), \"bytes\": \(size), \"withoutMillis\": \(String(format: "%.2f", without)), "
            + "\"withMillis\": \(String(format: "%.2f", with)), \"costMicrosPerTest\": \(String(format: "%.1f", costMicrosPerTest))}"
    }

    var table: String {
        "stored \(size >> 20) MiB test stdin (\(mode)), \(jobs) jobs of \(tests) tests each way: \(String(format: "%.1f", costMicrosPerTest)) µs per test that reads it "
            + "(a job \(String(format: "%.2f", without)) → \(String(format: "%.2f", with)) ms)"
    }
}

extension StoreBench {
    static func measureTestInput(jobs: Int, tests: Int = 20, mode: String, isolation: Isolation?) async -> StoredTestInputResult? {
        let directory = NSTemporaryDirectory() + "corral-bench-store-tests-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let size = 10 << 20
        guard let store = try? FileStore(directory: directory, maxBytes: 64 << 20, maxFileBytes: 32 << 20),
              let stored = try? store.put((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 13) }) else { return nil }
        func spec(_ input: TestData) -> StepsSpec {
            StepsSpec(steps: [StepSpec(name: "t", job: JobSpec(processes: [ProcessSpec(name: "p0", args: ["/bin/true"], isolation: isolation)]),
                                       tests: (0..<tests).map { TestSpec(name: String($0 + 1), input: input, answer: .content([])) },
                                       checker: .builtin(.exact))])
        }
        let plain = spec(.content([])), using = spec(.fileId(stored.id.hex))
        let runner = StepsRunner(jobs: JobRunner(fileStore: store))
        var without: [Double] = [], with: [Double] = [], differences: [Double] = []
        for round in 0..<(jobs + 2) {
            var walls: [Double] = [0, 0]
            // Alternate which goes first.
            for index in (round % 2 == 0 ? [0, 1] : [1, 0]) {
                let start = monotonicNanos()
                guard let report = try? await runner.run(index == 0 ? plain : using), report.ok else { return nil }
                walls[index] = Double(monotonicNanos() - start) / 1e6
            }
            if round < 2 { continue } // warm-up
            without.append(walls[0])
            with.append(walls[1])
            differences.append((walls[1] - walls[0]) * 1e3 / Double(tests))
        }
        return StoredTestInputResult(mode: mode, jobs: jobs, tests: tests, size: size, without: Summary(without).median, with: Summary(with).median,
                                     costMicrosPerTest: Summary(differences).median)
    }
}
