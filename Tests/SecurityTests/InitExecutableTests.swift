import Corral
import CorralTestSupport
import Foundation
import Testing

/// An isolated run's init is the `corral-init` executable, run as root: whoever could put a
/// program of theirs in its place would run it as root. Each test plants one and expects
/// Corral to refuse it (setup error, stage `init`) without running anything.
extension SecurityTests {
@Suite("Init executable")
struct InitExecutableTests {
    /// The corral-init SwiftPM built next to this test binary.
    static let built: String = {
        let own = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        return (own as NSString).deletingLastPathComponent + "/corral-init"
    }()

    /// A root-owned directory of mode 0755 with a copy of corral-init in it.
    static func plantedCopy() throws -> (directory: String, path: String) {
        let directory = NSTemporaryDirectory() + "corral-init-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o755])
        let path = directory + "/corral-init"
        try FileManager.default.copyItem(atPath: built, toPath: path)
        #expect(chmod(path, 0o755) == 0)
        return (directory, path)
    }

    static func run(_ initExecutable: String, _ arguments: [String] = ["/bin/cat", "/proc/1/cmdline"]) async throws -> RunReport {
        try await Runner(configuration: RunnerConfiguration(initExecutable: initExecutable))
            .run(Job(arguments: arguments, standardOutput: .capture(max: 4096), limits: Limits(wallTime: .seconds(10)), isolation: Isolation()))
    }

    @Test("an isolated run's PID 1 is corral-init, exec'd with its plan on a descriptor: no argument, no environment",
          .enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func initIsTheExecutable() async throws {
        #expect(FileManager.default.isExecutableFile(atPath: Self.built), "\(Self.built) was not built")
        let inside = try await Runner().run(Job(arguments: ["/bin/cat", "/proc/1/cmdline"], standardOutput: .capture(max: 4096),
                                                limits: Limits(wallTime: .seconds(10)), isolation: Isolation()))
        #expect(inside.status == .ok, "\(inside.message)")
        #expect(inside.stdout?.text == "corral-init\0", "PID 1 runs \(inside.stdout?.text ?? "")")
        // Its environment, read from the host while the run goes on (nobody inside may read it).
        let run = Task {
            try await Runner().run(Job(arguments: ["/bin/sleep", "1"], limits: Limits(wallTime: .seconds(10)), isolation: Isolation()))
        }
        // Other tests run isolated runs in parallel: the init of this one is the one whose
        // child runs `sleep` (an init forks the program only after its own exec, so its
        // environment is its own by then).
        var found: Int32?
        for _ in 0..<200 where found == nil {
            found = DescriptorTests.initsOfThisProcess().first { pid in
                let children = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
                return children.split(separator: " ").contains { child in
                    (try? String(contentsOfFile: "/proc/\(child)/comm", encoding: .utf8)) == "sleep\n"
                }
            }
            if found == nil { try await Task.sleep(for: .milliseconds(10)) }
        }
        let pid = try #require(found, "the isolated init of `sleep 1` was not found")
        let environment = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ"))
        #expect(environment.isEmpty, "corral-init has an environment: \(String(decoding: environment, as: UTF8.self))")
        #expect(try await run.value.status == .ok)
    }

    @Test("a copy in a safe place works", .enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func safeCopyRuns() async throws {
        let planted = try Self.plantedCopy()
        defer { try? FileManager.default.removeItem(atPath: planted.directory) }
        let report = try await Self.run(planted.path)
        #expect(report.status == .ok, "\(report.message)")
        #expect(report.stdout?.text?.hasPrefix("corral-init") == true, "\(report.stdout?.text ?? "")")
    }

    @Test("a corral-init its group or others can write is refused", .enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func writableIsRefused() async throws {
        let planted = try Self.plantedCopy()
        defer { try? FileManager.default.removeItem(atPath: planted.directory) }
        #expect(chmod(planted.path, 0o757) == 0)
        let report = try await Self.run(planted.path)
        #expect(report.status == .setupError)
        #expect(report.error?.stage == "init", "\(report.message)")
        #expect(report.message.contains("writable"), "\(report.message)")
    }

    @Test("a corral-init owned by another user is refused", .enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func foreignOwnerIsRefused() async throws {
        let planted = try Self.plantedCopy()
        defer { try? FileManager.default.removeItem(atPath: planted.directory) }
        #expect(chown(planted.path, 1000, 1000) == 0)
        let report = try await Self.run(planted.path)
        #expect(report.status == .setupError)
        #expect(report.error?.stage == "init", "\(report.message)")
    }

    @Test("a corral-init in a directory another user can write is refused (they could swap it)",
          .enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func writableDirectoryIsRefused() async throws {
        let planted = try Self.plantedCopy()
        defer { try? FileManager.default.removeItem(atPath: planted.directory) }
        #expect(chmod(planted.directory, 0o777) == 0)
        let report = try await Self.run(planted.path)
        #expect(report.status == .setupError)
        #expect(report.error?.stage == "init", "\(report.message)")
    }

    @Test("a corral-init that is a symbolic link is refused", .enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func symlinkIsRefused() async throws {
        let planted = try Self.plantedCopy()
        defer { try? FileManager.default.removeItem(atPath: planted.directory) }
        let link = planted.directory + "/link"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: planted.path)
        let report = try await Self.run(link)
        #expect(report.status == .setupError)
        #expect(report.error?.stage == "init", "\(report.message)")
    }

    @Test("a configured corral-init that is not there is an error, not a silent fallback",
          .enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func missingConfiguredIsAnError() async throws {
        let report = try await Self.run("/nonexistent-\(UUID().uuidString)/corral-init")
        #expect(report.status == .setupError)
        #expect(report.error?.stage == "init", "\(report.message)")
    }
}
}
