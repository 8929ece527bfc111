import CorralTestSupport
import Foundation
import Testing

/// `corral worker` has no HTTP side: its help shows the job flags it uses and none of
/// serve's HTTP flags, which it refuses; `corral serve` still shows both.
@Suite("corral worker's flags")
struct WorkerHelpTests {
    // As the help prints them, with their value's name: "--host" alone is a prefix of "--host-files".
    /// (`--queue` is in both: serve's takes a number or a URL, the worker's a PostgreSQL URL.)
    static let httpOnly = ["--host <", "--port <", "--token <", "--token-file <", "--max-body <", "--max-bodies-in-flight <",
                           "--max-connections <", "--idle-timeout <", "--body-timeout <", "--state-dir <", "--accept-only"]
    static let shared = ["--parallelism <", "--max-cpu-time <", "--default-memory <", "--file-store <", "--no-isolate", "--seccomp <",
                         "--shutdown-grace <", "--lease <", "--result-ttl <", "--callback-allow <", "--callback-ca <", "--log-level <",
                         "--queue-file <", "--queue <", "--host-files <"]

    @Test("corral worker --help: the job flags, none of serve's HTTP flags")
    func workerHelp() throws {
        let result = try Spawn.run(corralPath, ["worker", "--help"])
        #expect(result.status == 0, "\(result.standardError)")
        let help = result.standardOutput
        #expect(help.contains("USAGE: corral worker"), "\(help)")
        for flag in Self.shared { #expect(help.contains(flag), "\(flag) missing: \(help)") }
        for flag in Self.httpOnly { #expect(!help.contains(flag), "\(flag) shown: \(help)") }
    }

    @Test("corral serve --help still shows both")
    func serveHelp() throws {
        let help = try Spawn.run(corralPath, ["serve", "--help"]).standardOutput
        for flag in Self.shared + Self.httpOnly { #expect(help.contains(flag), "\(flag) missing: \(help)") }
    }

    @Test("corral worker refuses an HTTP flag (it would do nothing)")
    func workerRefusesHTTPFlags() throws {
        let result = try Spawn.run(corralPath, ["worker", "--port", "5050"])
        #expect(result.status != 0)
        #expect(result.standardError.contains("port"), "\(result.standardError)")
    }
}
