import Foundation
import LoopbackHTTP

/// The `corral` binary built beside the test bundle.
public let corralBinary: String = {
    let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent("corral").path
}()

/// A running `corral serve` process on a free port, with its own TMPDIR (so its job
/// directories can be counted), stopped with SIGKILL when the test is done with it.
public struct ServeProcess: Sendable {
    public let process: Spawn.Started
    public let port: Int
    public let tmp: TemporaryDirectory

    public static func start(_ arguments: [String], environment extra: [String: String] = [:]) throws -> ServeProcess {
        let tmp = TemporaryDirectory()
        var environment = ProcessInfo.processInfo.environment
        environment["TMPDIR"] = tmp.path
        environment.merge(extra) { $1 }
        // Each server its own queue (one process per state directory), unless the test says;
        // beside the TMPDIR, which tests expect to be empty once the jobs are done.
        let state = arguments.contains("--state-dir") ? [] : ["--state-dir", tmp.path + ".state"]
        let process = try Spawn.start(corralBinary, ["serve", "--port", "0"] + state + arguments,
                                      environment: environment.map { "\($0.key)=\($0.value)" })
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let output = process.standardOutputSoFar
            if let range = output.range(of: #"listening on http://127\.0\.0\.1:(\d+)"#, options: .regularExpression),
               let port = Int(output[range].split(separator: ":").last ?? "") {
                return ServeProcess(process: process, port: port, tmp: tmp)
            }
            if !Leftovers.isRunning(process.pid) { break }
            usleep(10_000)
        }
        kill(process.pid, SIGKILL)
        let result = process.wait()
        tmp.remove()
        throw FixtureError("corral serve did not start: \(result.standardError)")
    }

    /// POST /v1/run with `body`: the status and the answer's JSON object.
    public func run(_ body: String) throws -> (status: Int, json: [String: Any], text: String) {
        let response = try HTTPConnection(port: port).request("POST", "/v1/run", headers: [("Content-Type", "application/json")],
                                                               body: Array(body.utf8))
        let text = String(decoding: response.body, as: UTF8.self)
        let json = (try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any]) ?? [:]
        return (response.status, json, text)
    }

    /// SIGKILL (a crash), then `corral cleanup` with this server's TMPDIR, as an operator would
    /// run it: a job that was running leaves its tmpfs mounted, which no removal can take away.
    /// The TMPDIR goes with it; the cleanup's result is returned for tests that check it.
    @discardableResult
    public func crash() throws -> Spawn.Result {
        kill(process.pid, SIGKILL)
        _ = process.wait(timeout: 20)
        let cleanup = try Spawn.run(corralBinary, ["cleanup", "--json"], environment: ["TMPDIR=\(tmp.path)", "PATH=/usr/bin:/bin"])
        tmp.remove()
        return cleanup
    }

    /// SIGTERM, then the exit status and what it wrote; the TMPDIR goes with it.
    @discardableResult
    public func stop() -> Spawn.Result {
        kill(process.pid, SIGTERM)
        let result = process.wait(timeout: 60)
        tmp.remove()
        return result
    }
}
