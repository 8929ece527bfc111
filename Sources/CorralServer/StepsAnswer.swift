import Corral
import Foundation
import Logging

/// What `POST /v1/run` answers with: a job's report, or a job of steps' report.
enum AnyJobReport: Sendable {
    case job(JobReport)
    case steps(StepsReport)

    func metadata(_ id: String) -> Logger.Metadata {
        switch self {
        case .job(let report): return RunHandler.metadata(id, report)
        case .steps(let report):
            let summary = report.summary
            var metadata: Logger.Metadata = [
                "run.id": .string(id),
                "status": .string(report.ok ? "ok" : (report.steps.first { !$0.ok }?.status.rawValue ?? "ok")),
                "steps": .stringConvertible(report.steps.count),
                "tests": .string("\(summary.passed)/\(summary.run)/\(summary.tests)"),
                "wall": .string(String(format: "%.3f", report.wallTime)),
            ]
            if let failure = summary.firstFailure { metadata["verdict"] = .string(failure.verdict.rawValue) }
            return metadata
        }
    }
}

/// A job of steps' report as JSON: keys sorted, as the job report's.
enum StepsJSON {
    static func encode(_ report: StepsReport) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? Array(encoder.encode(report))) ?? Array(#"{"error":"the report could not be encoded"}"#.utf8)
    }
}
