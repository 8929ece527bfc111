import Corral
import CorralTestSupport
import Foundation
import Synchronization
import Testing

/// What a job of steps keeps until it ends: every step's directories (later steps take files
/// from them). A client choosing the number of steps and of processes per step chose what the
/// runner (a server, as root) held: a descriptor per process of every step, and a tmpfs mount
/// per step in the host's mount namespace (`fs.mount-max`, 100000, is the whole namespace's),
/// with nothing bounding the steps but the body's size (and a name check quadratic in them).
extension SecurityTests {
@Suite("Steps and descriptors a job of steps holds")
struct StepCountAttackTests {
    /// `count` steps of `processes` processes each running `/bin/true` (not isolated: quick).
    static func manySteps(_ count: Int, processes: Int) -> String {
        let process = #"{"args": ["/bin/true"]}"#
        let list = Array(repeating: process, count: processes).joined(separator: ", ")
        let steps = (0..<count).map { #"{"name": "s\#($0)", "processes": [\#(list)]}"# }
        return #"{"steps": [\#(steps.joined(separator: ", "))]}"#
    }

    @Test("a job of many steps of many processes holds no descriptor per process of every earlier step (a runner with 256 descriptors runs 60 steps of 4)")
    func descriptorsPerStep() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        let spec = tmp.file("steps.json")
        try Self.manySteps(60, processes: 4).write(toFile: spec, atomically: true, encoding: .utf8)
        // A server's descriptor limit is whatever its service manager gave it (a soft 1024 is
        // common): this runner gets 256, below the 60 x 5 the steps' directories took.
        let result = try Spawn.run("/usr/bin/prlimit", ["--nofile=256:256", corralBinary, "run", "--spec", spec],
                                   environment: ["TMPDIR=\(tmp.path)", "PATH=/usr/bin:/bin"])
        #expect(result.status == 0, "exit \(result.status): \(result.standardError.suffix(600))")
        #expect(!result.standardError.contains("Too many open files"), "\(result.standardError.suffix(600))")
        let report = (try? JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8))) as? [String: Any]
        #expect(report?["ok"] as? Bool == true, "\(result.standardOutput.prefix(400))")
    }

    @Test("a job of more steps than a job may have is refused before anything runs, through the parser every runner and server uses")
    func tooManySteps() throws {
        let most = StepsSpec.maxSteps
        #expect(most <= 64)
        let accepted = try JobDocument.parse(Data(Self.manySteps(most, processes: 1).utf8))
        guard case .steps(let steps) = accepted else { throw FixtureError("not a job of steps") }
        #expect(steps.steps.count == most)
        #expect { try JobDocument.parse(Data(Self.manySteps(most + 1, processes: 1).utf8)) } throws: { error in
            guard let error = error as? SpecError else { return false }
            return error.path == "steps" && error.message.contains("\(most)")
        }
        // The shape of the attack: tens of thousands of steps in a few megabytes.
        let started = Date()
        #expect { try JobDocument.parse(Data(Self.manySteps(50_000, processes: 1).utf8)) } throws: { ($0 as? SpecError)?.path == "steps" }
        #expect(Date().timeIntervalSince(started) < 10, "refusing 50000 steps took \(Date().timeIntervalSince(started)) s")
    }

    /// The files and directories in use in this process's job tmpfs mounts now.
    static func keptInodes() -> UInt64 {
        StepDiskAttackTests.jobMounts { UInt64($0.f_files - $0.f_ffree) }
    }

    @Test("the steps of a job share its directory's files and directories (each about 1 KiB of kernel memory no block counts), as they share its bytes",
          .enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func stepsShareInodes() async throws {
        let limit: UInt64 = 64 << 20 // 8192 files and directories
        let fill = (1...4).map { index in
            #"{"name": "fill\#(index)", "continueOnFailure": true, "processes": [{"args": \#(shell("seq 3000 | sed s/^/d/ | xargs mkdir"))}]}"#
        }.joined(separator: ", ")
        let json = #"{"steps": [\#(fill), {"name": "hold", "processes": [{"args": ["/bin/sleep", "1.5"]}]}]}"#
        guard case .steps(let spec) = try JobDocument.parse(Data(json.utf8)) else { throw FixtureError("not a job of steps") }
        let runner = StepsRunner(jobs: JobRunner(workdirLimit: limit))
        let done = StepDiskAttackTests.Done()
        let job = Task {
            defer { done.flag.store(true, ordering: .sequentiallyConsistent) }
            return try await runner.run(spec)
        }
        var most: UInt64 = 0
        while !done.flag.load(ordering: .sequentiallyConsistent) {
            most = max(most, Self.keptInodes())
            try await Task.sleep(for: .milliseconds(50))
        }
        let report = try await job.value
        #expect(most > 6000, "the first two steps made their directories: \(most)")
        #expect(most <= limit / 8192 + 256, "a job whose directory holds \(limit / 8192) files and directories kept \(most) at once")
        let statuses = report.steps.map { "\($0.name): \($0.status)" }
        let fitted = report.steps.prefix(2).allSatisfy(\.ok)
        #expect(fitted, "\(statuses)")
        #expect(report.steps.last?.ok == true, "\(statuses)")
    }

    @Test("a step gives its users back when it ends: 3 steps of 2 processes run under a --user-range of 4 uids, and a later step still takes an earlier one's file",
          .enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func stepsReleaseUsers() throws {
        let tmp = TemporaryDirectory()
        defer { tmp.remove() }
        func process(_ name: String, _ script: String) -> String {
            #"{"name": "\#(name)", "args": \#(shell(script)), "stdout": {"capture": {}}}"#
        }
        let json = """
        {"steps": [{"name": "a", "processes": [\(process("p", "id -u; echo made > out")), \(process("q", "id -u"))]},
                   {"name": "b", "processes": [\(process("p", "id -u")), \(process("q", "id -u"))]},
                   {"name": "c", "processes": [\(process("p", "id -u; cat out")), \(process("q", "id -u"))],
                    "files": [{"path": "out", "fromStep": "a", "fromPath": "out", "fromProcess": "p", "process": "p"}]}]}
        """
        let spec = tmp.file("steps.json")
        try json.write(toFile: spec, atomically: true, encoding: .utf8)
        // A job of steps held every step's uids until it ended: here the third step found the
        // range's four in use by the first two, as every other job of a server did meanwhile.
        let result = try Spawn.run(corralBinary, ["run", "--spec", spec, "--user-range", "60210-60213"],
                                   environment: ["TMPDIR=\(tmp.path)", "PATH=/usr/bin:/bin"])
        #expect(result.status == 0, "exit \(result.status): \(result.standardError.suffix(600)) \(result.standardOutput.prefix(1500))")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any],
                                  "\(result.standardError.suffix(600))")
        #expect(report["ok"] as? Bool == true, "\(result.standardOutput.prefix(1500))")
        let steps = report["steps"] as? [[String: Any]] ?? []
        #expect(steps.count == 3)
        for step in steps {
            let outputs = (step["processes"] as? [[String: Any]] ?? []).map { (($0["stdout"] as? [String: Any])?["text"] as? String) ?? "" }
            let uids = outputs.compactMap { $0.split(separator: "\n").first.flatMap { UInt32($0) } }
            #expect(uids.count == 2 && Set(uids).count == 2 && uids.allSatisfy { (60210...60213).contains($0) },
                    "step \(step["name"] ?? "?"): \(outputs)")
            if step["name"] as? String == "c" { #expect(outputs.first?.hasSuffix("made\n") == true, "\(outputs)") }
        }
    }

    @Test("a test's stored stdin and answer are held while the job runs: not deleted nor evicted under its later tests")
    func testFilesHeld() async throws {
        let path = "/tmp/corral-store-held-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let store = try FileStore(directory: path, maxBytes: 16 << 20)
        let input = try store.put(Array("21\n".utf8)).id
        let answer = try store.put(Array("21\n".utf8) + Array(" ".utf8)).id
        let test = #"{"stdin": {"fileId": "\#(input)"}, "answer": {"fileId": "\#(answer)"}}"#
        let json = """
        {"steps": [{"name": "run", "processes": [{"args": \(shell("sleep 0.4; cat")), "isolate": true}],
                    "checker": "tokens", "tests": [\(test), \(test), \(test)]}]}
        """
        guard case .steps(let spec) = try JobDocument.parse(Data(json.utf8)) else { throw FixtureError("not a job of steps") }
        let job = Task { try await StepsRunner(jobs: JobRunner(fileStore: store)).run(spec) }
        try await Task.sleep(for: .milliseconds(200))
        // Another client deletes the files the running job names (an upload that fills the
        // store evicts them the same way).
        var removed: [FileId] = []
        for id in [input, answer] {
            do {
                try store.remove(id)
                removed.append(id)
            } catch {
                #expect(error.kind == .inUse, "\(error)")
            }
        }
        #expect(removed.isEmpty, "files a running job names were removed under it: \(removed)")
        let report = try await job.value
        let verdicts = report.steps.first?.tests.map(\.verdict.rawValue) ?? []
        #expect(verdicts == ["accepted", "accepted", "accepted"], "\(verdicts)")
        // Held no longer once the job is done.
        try store.remove(input)
    }
}
}
