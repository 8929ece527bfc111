import Corral
import CorralTestSupport
import Foundation
import Testing

/// Every attack here runs alone: several look at every run cgroup or process of the test
/// process to prove nothing was left or reached.
@Suite(.serialized, .cgroupExclusive)
enum SecurityTests {}

let isRoot = geteuid() == 0
let needsRoot = "the attack needs Corral to run as root (the configuration a server or judge runs in)"
let canBecomeUser1000 = isRoot && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")

/// Runs a job spec (JSON) through the library.
func runSpec(_ json: String) async throws -> JobReport {
    let spec = try JobSpec.parse(Data(json.utf8))
    return try await JobRunner().run(spec)
}

/// `text` as a JSON string literal.
func jsonString(_ text: String) -> String {
    String(decoding: (try? JSONEncoder().encode(text)) ?? Data("\"\"".utf8), as: UTF8.self)
}

/// A shell command as the `args` of a job spec's process.
func shell(_ script: String) -> String {
    "[\"/bin/sh\", \"-c\", \(jsonString(script))]"
}

extension JobReport {
    func process(_ name: String) -> RunReport? {
        processes.first { $0.name == name }?.report
    }
}
