import Corral
import CorralTestSupport
import Foundation

/// The `corral` binary built beside the test bundle.
let corralPath: String = {
    let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent("corral").path
}()

func corral(_ arguments: String...) throws -> Spawn.Result {
    try Spawn.run(corralPath, arguments)
}

func decodeReport(_ path: String) throws -> [String: Any] {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
        throw FixtureError("the report is not a JSON object")
    }
    return object
}

/// What `--containment auto` gives on this host.
let expectedContainment: String = HostReport.inspect().cgroups.selected.rawValue
