import Corral
import CorralTestSupport
import Foundation
import Testing

/// A program can make a file of any apparent size that costs no disk (`truncate -s 1T`, or a
/// seek past the end of its stdout and one byte): a sparse file. Whatever Corral then copies
/// or stores of it must cost no more than the program itself could spend: a copy that writes
/// every zero of a 1 TiB hole fills the host's disk with bytes no run wrote, outside every
/// limit of the run (it happens after the run, in Corral, as root: the disk's reserve too).
/// Each attack here uses 256 MiB of hole (a fraction of a second to copy when the copy is
/// plain) and measures the blocks the copy took.
extension SecurityTests {
@Suite("Sparse files")
struct SparseFileAttackTests {
    static let hole: UInt64 = 256 << 20
    /// The most disk a copy of a 256 MiB hole with one byte of data may take (1 MiB: room
    /// for a file system's block and extent rounding, and far below the hole).
    static let allowedBlocks = 2048

    func steps(_ json: String, runner: JobRunner = JobRunner()) async throws -> StepsReport {
        guard case .steps(let spec) = try JobDocument.parse(Data(json.utf8)) else { throw FixtureError("not a job of steps") }
        return try await StepsRunner(jobs: runner).run(spec)
    }

    @Test("an earlier step's sparse file taken by a later step costs the later step no disk for its hole",
          arguments: [false, true])
    func stepFileHole(isolate: Bool) async throws {
        // The later step prints the blocks (512 bytes each) its copy of the file takes.
        let report = try await steps("""
        {"steps": [{"name": "plant", "processes": [{"args": \(shell("truncate -s \(Self.hole) loot && printf x >> loot")), "isolate": \(isolate)}]},
                   {"name": "take", "processes": [{"args": \(shell("stat -c %b taken; stat -c %s taken")), "isolate": \(isolate)}],
                    "files": [{"path": "taken", "fromStep": "plant", "fromPath": "loot"}]}]}
        """)
        #expect(report.steps.count == 2, "\(report)")
        let lines = (report.steps.last?.processes.first?.report.stdout?.text ?? "").split(separator: "\n").map(String.init)
        #expect(lines.count == 2, "\(lines)")
        #expect(lines.last == "\(Self.hole + 1)", "the file taken has the earlier step's size: \(lines)")
        let blocks = Int(lines.first ?? "") ?? Int.max
        #expect(blocks <= Self.allowedBlocks, "the copy of a \(Self.hole)-byte hole took \(blocks) blocks of 512 bytes")
    }

    @Test("a test's sparse output given to a custom checker costs the checker's copy no disk for its hole")
    func checkerOutputHole() async throws {
        // The tested program seeks its stdout past the end and writes one byte; the checker
        // says (in its comment) how many blocks its read-only copy of the output takes.
        let report = try await steps("""
        {"steps": [{"name": "t", "processes": [{"args": \(shell("dd if=/dev/zero bs=1 count=1 seek=\(Self.hole) status=none")), "limits": {"wallTime": 10}}],
          "checker": {"type": "custom", "args": ["/bin/sh", "-c", "stat -c %b \\"$2\\" >&2; exit 1", "checker"], "limits": {"wallTime": 10}},
          "tests": [{"stdin": {"content": ""}, "answer": {"content": "x"}}]}]}
        """)
        let test = try #require(report.steps.first?.tests.first)
        #expect(test.processes.first?.report.status == .ok, "\(test.processes.first?.report.message ?? "")")
        #expect(test.verdict == .wrongAnswer, "\(test.verdict) \(test.comment)")
        let blocks = Int(test.comment.trimmingCharacters(in: .whitespacesAndNewlines)) ?? Int.max
        #expect(blocks <= Self.allowedBlocks, "the checker's copy of a \(Self.hole)-byte hole took \(blocks) blocks: \(test.comment)")
    }

    @Test("a test's stdin taken from an earlier step's sparse file costs no disk for its hole")
    func testInputHole() async throws {
        // The tested program prints the blocks its stdin's file takes; the checker gives that
        // line back as its comment.
        let report = try await steps("""
        {"steps": [{"name": "plant", "processes": [{"args": \(shell("truncate -s \(Self.hole) loot && printf x >> loot"))}]},
                   {"name": "t", "processes": [{"args": \(shell("stat -L -c %b /proc/self/fd/0")), "limits": {"wallTime": 10}}],
                    "checker": {"type": "custom", "args": ["/bin/sh", "-c", "cat \\"$2\\" >&2; exit 1", "checker"], "limits": {"wallTime": 10}},
                    "tests": [{"stdin": {"fromStep": "plant", "fromPath": "loot"}}]}]}
        """)
        let test = try #require(report.steps.last?.tests.first)
        #expect(test.processes.first?.report.status == .ok, "\(test.processes.first?.report.message ?? "")")
        let blocks = Int(test.comment.trimmingCharacters(in: .whitespacesAndNewlines)) ?? Int.max
        #expect(blocks <= Self.allowedBlocks, "the test's input (a \(Self.hole)-byte hole) took \(blocks) blocks: \(test.comment)")
    }

    @Test("a tested program's 1 TiB sparse output is judged at once by every built-in checker (no terabyte of zeros read)")
    func builtinCheckersStopAtTheHole() async throws {
        for checker in ["exact", "lines", "tokens", "float"] {
            let started = ContinuousClock.now
            let report = try await steps("""
            {"steps": [{"name": "t", "processes": [{"args": \(shell("printf '42\\n'; dd if=/dev/zero bs=1 count=1 seek=1T status=none")), "limits": {"wallTime": 10}}],
              "checker": "\(checker)", "tests": [{"stdin": {"content": ""}, "answer": {"content": "42\\n"}}]}]}
            """)
            let test = try #require(report.steps.first?.tests.first)
            #expect(test.processes.first?.report.status == .ok, "\(checker): \(test.processes.first?.report.message ?? "")")
            #expect(test.verdict == .wrongAnswer || test.verdict == .presentationError, "\(checker): \(test.verdict) \(test.comment)")
            #expect(ContinuousClock.now - started < .seconds(10), "\(checker): \(ContinuousClock.now - started)")
        }
    }

    @Test("collect store:true of a 1 TiB sparse file is refused at once, and the store stays as it was")
    func collectSparseToStore() async throws {
        let path = "/tmp/corral-store-sparse-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let store = try FileStore(directory: path, maxBytes: 64 << 20)
        let spec = try JobSpec.parse(Data("""
        {"processes": [{"args": \(shell("truncate -s 1T big && printf x >> big"))}], "collect": [{"path": "big", "store": true}, {"path": "big", "max": 16}]}
        """.utf8))
        let started = ContinuousClock.now
        let report = try await JobRunner(fileStore: store).run(spec)
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(report.processes.first?.report.status == .ok, "\(report.processes.first?.report.message ?? "")")
        let stored = try #require(report.files.first)
        #expect(stored.fileId == nil && stored.error?.contains("not stored") == true, "\(stored)")
        #expect(store.statistics.files == 0 && store.statistics.bytes == 0 && store.statistics.reservedBytes == 0, "\(store.statistics)")
        let inline = try #require(report.files.last)
        #expect((inline.content?.bytes ?? 0) <= 16 && inline.content?.truncated == true, "\(inline)")
    }
}
}
