import Corral
import Foundation
import Testing

/// The server writes reports with ``ReportJSON``; it must give exactly what `JSONEncoder`
/// (sorted keys, slashes unescaped) gives from the `Codable` conformance.
@Suite("ReportJSON")
struct ReportJSONTests {
    static func encoded(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static var reports: [JobReport] {
        var full = RunReport(status: .memoryLimit, pid: 4242, exitCode: nil, signal: 9, signalName: "SIGKILL",
                             cpuTime: 0.022999741, userTime: 1e-05, systemTime: 123.456, wallTime: 3,
                             memoryPeak: 1 << 40, processes: 17, leftovers: 2,
                             limits: Limits(cpuTime: .milliseconds(1500), wallTime: .seconds(4), memory: 256 << 20, output: 1000,
                                            openFiles: 64, stack: 8 << 20, processes: 32, addressSpace: 1 << 32),
                             containment: .cgroupV1, processLimitHit: true, warnings: ["a \"quoted\" / slashed\nline", "ünïcödé ✓ \u{1}"],
                             events: [ProcessEvent(time: 0.5, pid: 4242, event: .exited, exitCode: 3),
                                      ProcessEvent(time: 1e-7, pid: 4243, event: .signaled, signal: 11),
                                      ProcessEvent(time: 2, pid: 4244, event: .continued)],
                             message: "killed: memory limit (256 MiB)",
                             error: SetupFailure(stage: "exec", errno: 2, message: "exec ./a.out: No such file or directory"))
        full.isolated = true
        full.stdout = CapturedOutput(Array("tab\there\r\n\u{8}\u{c}\\".utf8), truncated: true)
        full.stderr = CapturedOutput([0xff, 0xfe, 0x00, 0x41], truncated: false)
        let bare = RunReport(status: .ok, message: "exited with code 0")
        return [
            JobReport(status: .memoryLimit, processes: [NamedRunReport(name: "p0", report: full, startedAt: 0.001234, endedAt: 3.001234),
                                                         NamedRunReport(name: "second \"one\"", report: bare, startedAt: 4e-06, endedAt: nil)],
                      files: [CollectedFile(path: "out.txt", content: CapturedOutput(Array("x".utf8), truncated: false), error: nil),
                              CollectedFile(path: "gone", content: nil, error: "no such file")],
                      workdir: "/tmp/corral-job-abc", wallTime: 0.1 + 0.2),
            JobReport(status: .ok, processes: [NamedRunReport(name: "p0", report: bare)], files: [], workdir: nil, wallTime: 0),
        ]
    }

    @Test("job reports: byte for byte what JSONEncoder gives")
    func jobReports() throws {
        for report in Self.reports {
            #expect(String(decoding: ReportJSON.encode(report), as: UTF8.self) == (try Self.encoded(report)))
        }
    }

    @Test("run reports: byte for byte what JSONEncoder gives")
    func runReports() throws {
        for report in Self.reports.flatMap({ $0.processes.map(\.report) }) {
            #expect(String(decoding: ReportJSON.encode(report), as: UTF8.self) == (try Self.encoded(report)))
        }
    }
}
