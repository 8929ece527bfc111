import Corral
import Foundation

/// The interactive job of issue 4, measured: two processes answering each other over two
/// pipes, N round trips, through Corral's job runner and through a bare `pipe()` +
/// `posix_spawn` of the same two programs, interleaved. Corral connects the pipes
/// directly, so the round trips should cost the same.
struct PingPongResult: Sendable {
    let roundTrips: Int
    let repeats: Int
    let bareSeconds: Double
    let corralSeconds: Double

    var bareRate: Double { Double(roundTrips) / bareSeconds }
    var corralRate: Double { Double(roundTrips) / corralSeconds }
    /// Corral's round trips per second over the bare pipes' (1 = the same).
    var ratio: Double { corralRate / bareRate }

    var json: String {
        "{\"roundTrips\": \(roundTrips), \"repeats\": \(repeats), "
            + "\"bareRoundTripsPerSecond\": \(Int(bareRate)), \"corralRoundTripsPerSecond\": \(Int(corralRate)), "
            + "\"ratio\": \(String(format: "%.3f", ratio))}"
    }
}

enum PingPongBench {
    /// Compiles `Tests/Fixtures/pingpong.c` (next to this package) with the system's cc.
    static func compileFixture() -> String? {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Tests/Fixtures/pingpong.c").path
        let output = NSTemporaryDirectory() + "corral-bench-pingpong-\(getpid())"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["cc", "-O2", "-o", output, source]
        do { try process.run() } catch { return nil }
        process.waitUntilExit()
        return process.terminationStatus == 0 ? output : nil
    }

    static func measure(program: String, roundTrips: Int, repeats: Int) async -> PingPongResult? {
        var bare: [Double] = []
        var corral: [Double] = []
        let spec = JobSpec(
            processes: [
                ProcessSpec(name: "ping", args: [program, "ping", String(roundTrips)], stdin: .pipe("toPing"), stdout: .pipe("toPong")),
                ProcessSpec(name: "pong", args: [program, "pong"], stdin: .pipe("toPong"), stdout: .pipe("toPing")),
            ],
            pipes: ["toPing", "toPong"]
        )
        let runner = JobRunner()
        for _ in 0..<repeats {
            let bareStart = monotonicNanos()
            guard runBare(program, roundTrips) else { return nil }
            bare.append(Double(monotonicNanos() - bareStart) / 1e9)
            let corralStart = monotonicNanos()
            guard let report = try? await runner.run(spec), report.status == .ok else { return nil }
            corral.append(Double(monotonicNanos() - corralStart) / 1e9)
        }
        return PingPongResult(roundTrips: roundTrips, repeats: repeats, bareSeconds: Summary(bare).median,
                              corralSeconds: Summary(corral).median)
    }

    /// Two pipes, two posix_spawns with the ends dup'ed into place, two waits.
    private static func runBare(_ program: String, _ roundTrips: Int) -> Bool {
        var toPong: [Int32] = [-1, -1]
        var toPing: [Int32] = [-1, -1]
        guard pipe(&toPong) == 0, pipe(&toPing) == 0 else { return false }
        let all = toPong + toPing
        func spawn(_ arguments: [String], stdin: Int32, stdout: Int32) -> pid_t? {
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_adddup2(&actions, stdin, 0)
            posix_spawn_file_actions_adddup2(&actions, stdout, 1)
            for fd in all { posix_spawn_file_actions_addclose(&actions, fd) }
            let argv = arguments.map { strdup($0) } + [nil]
            defer { argv.forEach { free($0) } }
            var env: [UnsafeMutablePointer<CChar>?] = [strdup("PATH=/usr/bin:/bin"), nil]
            defer { free(env[0]) }
            var pid: pid_t = 0
            return posix_spawn(&pid, program, &actions, nil, argv, &env) == 0 ? pid : nil
        }
        let ping = spawn([program, "ping", String(roundTrips)], stdin: toPing[0], stdout: toPong[1])
        let pong = spawn([program, "pong"], stdin: toPong[0], stdout: toPing[1])
        all.forEach { close($0) }
        var ok = ping != nil && pong != nil
        for pid in [ping, pong].compactMap({ $0 }) {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            ok = ok && status == 0
        }
        return ok
    }
}
