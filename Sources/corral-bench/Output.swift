import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes to standard output or error without the C `stdout`/`stderr` globals. SIGPIPE is
/// ignored (see ``CorralBench``): output nobody reads any more is dropped, and the bench
/// still ends through its exit hook, which removes the cgroups it pooled.
enum Console {
    static func out(_ text: String) {
        write(text, to: 1)
    }

    static func error(_ text: String) {
        write(text, to: 2)
    }

    private static func write(_ text: String, to descriptor: Int32) {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { return }
            offset += written
        }
    }
}

/// The measured figures of one mode.
struct ModeResult: Sendable {
    let name: String
    let summary: Summary
    let failures: Int
}

/// Everything a benchmark run measured.
struct BenchResult: Sendable {
    let runs: Int
    let warmup: Int
    let baseline: Summary
    let baselineFailures: Int
    let modes: [ModeResult]
    var pingPong: PingPongResult?
    var server: [ServerBenchResult] = []
    var wholeProcess: WholeProcessBench.Measured?
    /// Spaced mode: the pause before each run, and each cgroup mode minus the process-group
    /// run of the same iteration.
    var spacingMillis: Int?
    var differences: [(name: String, summary: Summary)] = []
    var accounting: [AccountingBench.Result] = []
    var store: StoreBenchResult?
    var storedTestInput: [StoredTestInputResult] = []

    func ratio(_ mode: ModeResult) -> Double {
        mode.summary.median / baseline.median
    }

    /// One JSON object on one line; keys in a fixed order.
    var json: String {
        let modeObjects = modes.map { mode in
            "{\"name\": \(quoted(mode.name)), \"medianMicros\": \(fixed(mode.summary.median, 1)), "
                + "\"ratio\": \(fixed(ratio(mode), 3)), "
                + "\"p10Micros\": \(fixed(mode.summary.p10, 1)), \"p90Micros\": \(fixed(mode.summary.p90, 1)), "
                + "\"failures\": \(mode.failures)}"
        }
        return "{\"runs\": \(runs), \"warmup\": \(warmup), "
            + "\"baselineMicros\": \(fixed(baseline.median, 1)), "
            + "\"baselineP10\": \(fixed(baseline.p10, 1)), \"baselineP90\": \(fixed(baseline.p90, 1)), "
            + "\"modes\": [\(modeObjects.joined(separator: ", "))]"
            + (pingPong.map { ", \"pingPong\": \($0.json)" } ?? "")
            + (server.isEmpty ? "" : ", \"server\": [\(server.map(\.json).joined(separator: ", "))]")
            + (wholeProcess.map { ", \"wholeProcess\": \($0.json)" } ?? "")
            + (accounting.isEmpty ? "" : ", \"accounting\": [\(accounting.map(\.json).joined(separator: ", "))]")
            + (spacingMillis.map { ", \"spacedMillis\": \($0)" } ?? "")
            + (differences.isEmpty ? "" : ", \"overProcessGroup\": [" + differences.map {
                "{\"name\": \(quoted($0.name)), \"medianMicros\": \(fixed($0.summary.median, 1)), "
                    + "\"p10Micros\": \(fixed($0.summary.p10, 1)), \"p90Micros\": \(fixed($0.summary.p90, 1))}"
            }.joined(separator: ", ") + "]")
            + (store.map { ", \"store\": \($0.json)" } ?? "")
            + (storedTestInput.isEmpty ? "" : ", \"storedTestInput\": [\(storedTestInput.map(\.json).joined(separator: ", "))]") + "}\n"
    }

    /// A table for people: one row for the baseline, one per mode.
    var table: String {
        var lines = ["corral-bench: /bin/true, \(runs) runs of each (after \(warmup) warm-up), interleaved"
            + (spacingMillis.map { ", each after a pause of \($0) ms" } ?? "")]
        let header = [pad("mode", 23), pad("median µs", 11), pad("p10 µs", 11), pad("p90 µs", 11), pad("ratio", 8), pad("failed", 7)]
        lines.append(header.joined())
        lines.append(row("bare posix_spawn", baseline, ratio: 1, failures: baselineFailures))
        for mode in modes {
            lines.append(row(mode.name, mode.summary, ratio: ratio(mode), failures: mode.failures))
        }
        for (name, summary) in differences {
            lines.append("\(name) minus process-group of the same iteration: median \(signed(summary.median)) µs "
                + "(p10 \(signed(summary.p10)), p90 \(signed(summary.p90)))")
        }
        lines += accounting.map(\.table)
        if let pingPong {
            lines.append("ping-pong, \(pingPong.roundTrips) round trips (median of \(pingPong.repeats)): bare pipes "
                + "\(Int(pingPong.bareRate))/s, Corral job \(Int(pingPong.corralRate))/s, ratio \(fixed(pingPong.ratio, 3))")
        }
        lines += server.map(\.table)
        if let wholeProcess { lines.append(wholeProcess.table) }
        if let store { lines.append(store.table) }
        lines += storedTestInput.map(\.table)
        return lines.joined(separator: "\n") + "\n"
    }

    private func row(_ name: String, _ summary: Summary, ratio: Double, failures: Int) -> String {
        [pad(name, 23), pad(fixed(summary.median, 1), 11), pad(fixed(summary.p10, 1), 11),
         pad(fixed(summary.p90, 1), 11), pad(fixed(ratio, 3), 8), pad(String(failures), 7)].joined()
    }
}

private func fixed(_ value: Double, _ decimals: Int) -> String {
    guard value.isFinite else { return "null" }
    return String(format: "%.\(decimals)f", value)
}

private func signed(_ value: Double) -> String {
    (value >= 0 ? "+" : "") + fixed(value, 1)
}

private func pad(_ text: String, _ width: Int) -> String {
    text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
}

private func quoted(_ text: String) -> String {
    var result = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": result += "\\\""
        case "\\": result += "\\\\"
        case _ where scalar.value < 0x20: result += String(format: "\\u%04x", scalar.value)
        default: result.unicodeScalars.append(scalar)
        }
    }
    return result + "\""
}
