import Corral
import CorralServer
import CorralTestSupport
import Foundation
import Testing

private let twoCPUs = Set(CPUList.allowed()?.cpus ?? []).isSuperset(of: [0, 1])

/// `--cpus` with `--parallelism`: each slot runs on a CPU of its own.
@Suite("CPU slots", .serialized, .cgroupExclusive, .enabled(if: twoCPUs, "needs CPUs 0 and 1 in Corral's own affinity"))
struct CPUSlotTests {
    func pinnedConfiguration() throws -> ServerConfiguration {
        let cpus = try CPUList("0,1")
        // Not isolated: the two runs meet through files in a host directory.
        return testConfiguration { $0.cpus = cpus; $0.isolate = false }
    }

    @Test("two runs at once in two slots report different single CPUs; a job's own cpus are kept")
    func slots() async throws {
        // Each run waits until the other has started (a file each in a shared directory),
        // so both hold a slot at the same moment.
        let directory = TemporaryDirectory()
        defer { directory.remove() }
        let configuration = try pinnedConfiguration()
        let script = { @Sendable (me: String, other: String) in
            "touch \(directory.path)/\(me); i=0; while [ ! -e \(directory.path)/\(other) ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; grep Cpus_allowed_list /proc/self/status"
        }
        try await withServer(configuration) { server in
            async let first = server.runOnOwnConnection(job(["/bin/sh", "-c", script("a", "b")]))
            async let second = server.runOnOwnConnection(job(["/bin/sh", "-c", script("b", "a")]))
            let answers = try await [first, second]
            var seen: [String] = []
            for answer in answers {
                #expect(answer.status == 200, "\(answer.text)")
                #expect(answer.json["status"] as? String == "ok", "\(answer.text)")
                seen.append((answer.process["stdout"] as? [String: Any])?["text"] as? String ?? "")
            }
            #expect(Set(seen) == ["Cpus_allowed_list:\t0\n", "Cpus_allowed_list:\t1\n"], "\(seen)")
            // Alone, a run takes slot 0 (CPU 0) unless its job names CPU 1 itself.
            let own = try await server.run(job(["/bin/sh", "-c", "grep Cpus_allowed_list /proc/self/status"], extra: ["cpus": "1"]))
            #expect((own.process["stdout"] as? [String: Any])?["text"] as? String == "Cpus_allowed_list:\t1\n", "\(own.text)")
        }
    }

    @Test("a job naming CPUs outside the server's is refused with 400 and the field")
    func outside() async throws {
        let cpus = try CPUList("0")
        try await withServer(testConfiguration { $0.cpus = cpus; $0.parallelism = 1 }) { server in
            let answer = try await server.run(job(["/bin/true"], extra: ["cpus": "1"]))
            #expect(answer.status == 400, "\(answer.text)")
            #expect(answer.json["path"] as? String == "processes[0].cpus", "\(answer.text)")
        }
    }

    @Test("more slots than CPUs is refused at start")
    func tooManySlots() throws {
        var configuration = testConfiguration()
        configuration.cpus = try CPUList("0")
        configuration.parallelism = 2
        do {
            try configuration.validate()
            Issue.record("--parallelism 2 with --cpus 0 was accepted")
        } catch {
            #expect(error.description.contains("--parallelism 2 needs a CPU of its own for each slot"), "\(error)")
        }
    }
}
