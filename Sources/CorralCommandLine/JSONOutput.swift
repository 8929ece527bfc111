import ArgumentParser
import CorralCommandLine
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SystemPackage

/// Corral's JSON output: pretty, keys sorted, one trailing newline.
public enum JSONOutput {
    public static func data(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(value) + Data("\n".utf8)
    }

    /// To a file, or to stdout for "-".
    public static func write(_ value: some Encodable, to destination: String = "-") throws {
        let data = try data(value)
        if destination == "-" {
            try StandardOutput.write(data)
            return
        }
        let file = try FileDescriptor.open(FilePath(destination), .writeOnly, options: [.create, .truncate],
                                           permissions: [.ownerReadWrite, .groupRead, .otherRead])
        try file.closeAfter { _ = try file.writeAll(data) }
    }

    /// A run's or job's report: a failure to write it is one line on stderr and exit 125
    /// (the run's own exit code would claim a result nobody got).
    public static func writeReport(_ value: some Encodable, to destination: String) throws(ExitCode) {
        do {
            try write(value, to: destination)
        } catch {
            StandardError.write("corral: \(error is StandardOutput.Failure ? "" : "writing the report to \(destination): ")\(error)\n")
            throw ExitCode(ExitCodes.corralError)
        }
    }
}
