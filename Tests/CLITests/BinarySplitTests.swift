import CorralTestSupport
import Foundation
import Testing

/// `corral` holds the per-run commands; `serve` lives in `corral-server`, which `corral serve`
/// execs. Plain `run` lines take a fast parser, the rest ArgumentParser: both must answer
/// alike.
@Suite("corral and corral-server; the fast path of run")
struct BinarySplitTests {
    @Test("corral serve --help and corral help serve print serve's own help (from corral-server), exit 0",
          arguments: [["serve", "--help"], ["help", "serve"]])
    func serveHelp(arguments: [String]) throws {
        let result = try Spawn.run(corralPath, arguments)
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.contains("USAGE: corral serve"), "\(result.standardOutput)")
        #expect(result.standardOutput.contains("--max-body"), "\(result.standardOutput)")
    }

    @Test("corral serve with a bad flag: exit 125 and one line, as before the split")
    func serveRefusesUnknownOption() throws {
        let result = try Spawn.run(corralPath, ["serve", "--no-such-flag"])
        #expect(result.status == 125, "\(result.standardError)")
        #expect(result.standardError.contains("no-such-flag"), "\(result.standardError)")
    }

    /// What the loader does at every start of `corral`: load these libraries and apply the
    /// relocations. The Swift runtime, Foundation, libstdc++ and libgcc are linked in, and the
    /// relative relocations packed (DT_RELR); a change of the link that loses either costs
    /// every judge's run (libstdc++ alone was half of `corral --version`'s instructions).
    @Test("corral needs only libc, libm and the loader at start, and its relative relocations are packed")
    func staticallyLinkedRuntime() throws {
        let dynamic = try Spawn.run("/usr/bin/readelf", ["-d", corralPath])
        #expect(dynamic.status == 0, "\(dynamic.standardError)")
        let needed = dynamic.standardOutput.split(separator: "\n").filter { $0.contains("(NEEDED)") }
            .compactMap { line in line.split(separator: "[").last.map { String($0.dropLast()) } }
        #expect(Set(needed).isSubset(of: ["libc.so.6", "libm.so.6", "ld-linux-x86-64.so.2"]), "\(needed)")
        #expect(dynamic.standardOutput.contains("(RELR)"), "\(dynamic.standardOutput)")
    }

    /// The version script (Linker/hidden-symbols.map): with the ~9,000 Swift symbols exported,
    /// the loader's lookups for the C library went through their hash table at every start.
    @Test("corral exports no symbols")
    func noExportedSymbols() throws {
        let symbols = try Spawn.run("/usr/bin/nm", ["-D", "--defined-only", corralPath])
        #expect(symbols.status == 0, "\(symbols.standardError)")
        let exported = symbols.standardOutput.split(separator: "\n")
        #expect(exported.isEmpty, "\(exported.count) exported, e.g. \(exported.prefix(3))")
    }

    @Test("corral --help lists serve beside run, doctor and cleanup")
    func rootHelp() throws {
        let result = try Spawn.run(corralPath, ["--help"])
        #expect(result.status == 0)
        for command in ["run", "doctor", "cleanup", "serve"] {
            #expect(result.standardOutput.contains("  \(command) "), "\(command): \(result.standardOutput)")
        }
    }

    /// The same run through both parsers (the fast path takes the program after `--`;
    /// ArgumentParser takes it without): same exit code, same report fields.
    @Test("a run through the fast path and through ArgumentParser reports the same")
    func bothPathsRunAlike() throws {
        let fast = try corral("run", "--quiet", "--cpu-time", "1", "--stdout-max", "1K", "--report", "-", "--", "/bin/sh", "-c", "echo hi; exit 3")
        let parsed = try corral("run", "--quiet", "--cpu-time", "1", "--stdout-max", "1K", "--report", "-", "/bin/sh", "-c", "echo hi; exit 3")
        #expect(fast.status == 3 && parsed.status == 3, "\(fast.standardError) \(parsed.standardError)")
        for result in [fast, parsed] {
            let report = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
            #expect(report["status"] as? String == "nonzero-exit")
            #expect(report["exitCode"] as? Int == 3)
            #expect((report["stdout"] as? [String: Any])?["text"] as? String == "hi\n", "\(report)")
        }
    }

    @Test("a fast-path line that does not validate gets ArgumentParser's message and exit 125")
    func invalidFastLine() throws {
        let result = try Spawn.run(corralPath, ["run", "--memory", "10", "--", "/bin/true"])
        #expect(result.status == 125)
        #expect(result.standardError.hasPrefix("corral: --memory: "), "\(result.standardError)")
        #expect(result.standardError.split(separator: "\n").count == 1, "\(result.standardError)")
    }
}
