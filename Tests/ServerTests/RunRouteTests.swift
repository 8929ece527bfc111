import Corral
import CorralServer
import CorralTestSupport
import Foundation
import Testing

/// `POST /v1/run` over a real socket: a job of every status, and every way a request is refused.
@Suite("POST /v1/run", .serialized, .cgroupExclusive)
struct RunRouteTests {
    let document: OpenAPIDocument

    init() throws {
        document = try OpenAPIDocument.load()
    }

    func expectDocumented(_ answer: Answer, _ method: String = "POST", _ path: String = "/v1/run",
                          sourceLocation: SourceLocation = #_sourceLocation) throws {
        let schema = try document.responseSchema(method, path, status: answer.status)
        let value = try JSONSerialization.jsonObject(with: answer.body)
        let problems = document.validate(value, against: schema)
        #expect(problems.isEmpty, "\(method) \(path) \(answer.status): \(problems)", sourceLocation: sourceLocation)
    }

    @Test("a job of each status answers 200 with that status, as documented")
    func statuses() async throws {
        let spin = try Fixtures.path("spin")
        let hog = try Fixtures.path("hog")
        let isolated = try CorralServer(configuration: testConfiguration(), logger: .init(label: "probe")).isolation != nil
        var cases: [(String, JobBody)] = [
            ("ok", job(["/bin/sh", "-c", "echo hello"])),
            ("nonzero-exit", job(["/bin/sh", "-c", "exit 3"])),
            ("signaled", job(["/bin/sh", "-c", "kill -SEGV $$"])),
            ("cpu-time-limit", job(["./spin"], limits: ["cpuTime": 0.3], files: [["path": "spin", "copy": spin]])),
            ("wall-time-limit", job(["/bin/sleep", "5"], limits: ["wallTime": 0.3])),
            ("output-limit", job(["/bin/sh", "-c", "exec head -c 100000 /dev/zero > big"], limits: ["output": 1000])),
            ("setup-error", job(["./missing-program"])),
        ]
        if CgroupCheck.hasV1 || CgroupCheck.hasV2Controllers {
            cases.append(("memory-limit", job(["./hog", "256"], limits: ["memory": "32M"], files: [["path": "hog", "copy": hog]])))
        }
        if isolated {
            cases.append(("syscall-violation", job(["/usr/bin/python3", "-c", "import ctypes; ctypes.CDLL(None).syscall(101, 16, 1, 0, 0)"])))
        }
        let all = cases
        let fixtures = URL(fileURLWithPath: spin).deletingLastPathComponent().path
        try await withServer(testConfiguration { $0.hostFiles = [fixtures] }) { server in
            for (status, job) in all {
                let answer = try await server.run(job)
                #expect(answer.status == 200, "\(status): \(answer.text)")
                #expect(answer.json["status"] as? String == status, "\(status): \(answer.text)")
                #expect(answer.headers["x-corral-run-id"]?.isEmpty == false)
                try expectDocumented(answer)
                let process = answer.process
                if status != "setup-error" { #expect(process["isolated"] as? Bool == isolated) }
                #expect(process["containment"] as? String == CgroupCheck.host.cgroups.selected.rawValue)
            }
            let ok = try await server.run(job(["/bin/sh", "-c", "echo hello"]))
            #expect((ok.process["stdout"] as? [String: Any])?["text"] as? String == "hello\n")
            // What the job left out is the server's default, in the report.
            let limits = ok.process["limits"] as? [String: Any] ?? [:]
            #expect(limits["cpuTime"] as? Double == 10)
            #expect(limits["wallTime"] as? Double == 21)
            #expect(limits["memory"] as? Int == 512 << 20)
            #expect(limits["processes"] as? Int == 64)
            let metrics = try await server.metrics()
            #expect(metrics["corral_runs_total{status=\"ok\"}"] == 2)
            #expect(metrics["corral_runs_total{status=\"setup-error\"}"] == 1)
            #expect(metrics["corral_setup_errors_total"] == 1)
            #expect(metrics["corral_run_wall_seconds_count"] == Double(all.count + 1))
        }
        #expect(CgroupCheck.busyRunCgroups().isEmpty)
    }

    @Test("a spec that does not validate is a 400 naming the field")
    func badSpecs() async throws {
        try await withServer { server in
            let malformed = try await server.post(json: "{\"processes\": [")
            #expect(malformed.status == 400)
            #expect((malformed.json["error"] as? String)?.contains("not valid JSON") == true, "\(malformed.text)")
            try expectDocumented(malformed)

            let cases: [(String, String)] = [
                ("{\"processes\": [{\"args\": \"/bin/true\"}]}", "processes[0].args"),
                ("{\"processes\": [{\"args\": [\"/bin/true\"], \"limits\": {\"cpuTime\": true}}]}", "processes[0].limits.cpuTime"),
                ("{\"processes\": [{\"args\": [\"/bin/true\"], \"colour\": 1}]}", "processes[0].colour"),
                ("{\"processes\": [], \"extra\": 1}", "extra"),
                ("[1, 2]", ""),
                ("{\"processes\": [{\"args\": [\"/bin/true\"], \"stdin\": {\"pipe\": \"nowhere\"}}]}", "processes[0].stdin"),
            ]
            for (body, path) in cases {
                let answer = try await server.post(json: body)
                #expect(answer.status == 400, "\(body): \(answer.text)")
                #expect((answer.json["path"] as? String ?? "") == path, "\(body): \(answer.text)")
                #expect((answer.json["error"] as? String)?.isEmpty == false)
                try expectDocumented(answer)
            }
            let metrics = try await server.metrics()
            #expect(metrics["corral_rejected_requests_total{reason=\"bad-request\"}"] == Double(cases.count + 1))
            #expect(metrics["corral_runs_total{status=\"ok\"}"] == 0)
        }
    }

    @Test("limits over the ceilings are refused with 400, never clamped")
    func ceilings() async throws {
        let configuration = testConfiguration {
            $0.ceilings = Ceilings(cpuTime: .seconds(2), wallTime: .seconds(5), memory: 64 << 20, output: 1 << 20, processes: 16)
            $0.defaults = JobDefaults(cpuTime: .seconds(1), memory: 32 << 20, output: 1 << 20, processes: 8)
        }
        try await withServer(configuration) { server in
            let cases: [(JobBody, String)] = [
                (job(["/bin/true"], limits: ["cpuTime": 3]), "processes[0].limits.cpuTime"),
                (job(["/bin/true"], limits: ["wallTime": "6s"]), "processes[0].limits.wallTime"),
                (job(["/bin/true"], limits: ["memory": "65M"]), "processes[0].limits.memory"),
                (job(["/bin/true"], limits: ["output": "2M"]), "processes[0].limits.output"),
                (job(["/bin/true"], limits: ["processes": 17]), "processes[0].limits.processes"),
                (job(["/bin/true"], extra: ["stdout": ["capture": ["max": "2M"]]]), "processes[0].stdout.capture.max"),
                (job(["/bin/true"], collect: [["path": "x", "max": "4M"]]), "collect[0].max"),
                (JobBody(["processes": Array(repeating: ["args": ["/bin/true"]], count: 17)]), "processes"),
            ]
            for (job, path) in cases {
                let answer = try await server.run(job)
                #expect(answer.status == 400, "\(path): \(answer.text)")
                #expect(answer.json["path"] as? String == path, "\(answer.text)")
                #expect((answer.json["error"] as? String)?.contains("ceiling") == true, "\(answer.text)")
            }
            // At the ceiling is fine; a CPU limit without a wall limit gets 2 × cpu + 1 s, cut to the ceiling.
            let atCeiling = try await server.run(job(["/bin/true"], limits: ["cpuTime": 2, "memory": "64M", "processes": 16]))
            #expect(atCeiling.status == 200, "\(atCeiling.text)")
            let limits = atCeiling.process["limits"] as? [String: Any] ?? [:]
            #expect(limits["cpuTime"] as? Double == 2)
            #expect(limits["wallTime"] as? Double == 5)
        }
    }

    @Test("a job stays in its working directory: no host file written, no dir outside, no kept workdir, host files read only under --host-files")
    func hostPaths() async throws {
        let allowed = TemporaryDirectory()
        defer { allowed.remove() }
        try "allowed content\n".write(toFile: allowed.file("data.txt"), atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: allowed.file("escape"), withDestinationPath: "/etc/hostname")
        let victim = allowed.file("written-by-a-job")
        // Refused by any server: writing a host file, running elsewhere.
        let always: [(JobBody, String)] = [
            (job(["/bin/echo", "x"], extra: ["stdout": victim]), "processes[0].stdout"),
            (job(["/bin/echo", "x"], extra: ["stderr": ["file": victim]]), "processes[0].stderr.file"),
            // Every path of a spec is relative, without "..": the red team's reads and writes of host files.
            (job(["/bin/cat"], extra: ["stdin": "../../../../../../etc/shadow"]), "processes[0].stdin"),
            (job(["/bin/cat"], extra: ["stdin": "../../../../../"]), "processes[0].stdin"),
            (job(["/bin/echo", "x"], extra: ["stdout": "../../../../../etc/corral-red-team"]), "processes[0].stdout"),
            (job(["/bin/cat"], extra: ["stdin": allowed.file("data.txt")]), "processes[0].stdin"),
            (job(["/bin/true"], extra: ["dir": "/tmp", "isolate": false]), "processes[0].dir"),
            (job(["/bin/true"], extra: ["dir": "sub/../..", "isolate": false]), "processes[0].dir"),
        ]
        let keep = JobBody(["processes": [["args": ["/bin/true"]]], "workdir": ["keep": true]])
        let alwaysAndKeep = always + [(keep, "workdir.keep")]
        try await withServer(testConfiguration { $0.isolate = false; $0.hostFiles = [allowed.path] }) { server in
            for (body, path) in alwaysAndKeep {
                let answer = try await server.run(body)
                #expect(answer.status == 400, "\(path): \(answer.text)")
                #expect(answer.json["path"] as? String == path, "\(answer.text)")
            }
            #expect(!FileManager.default.fileExists(atPath: victim))
            // Under --host-files: read; outside it, through a link out of it, or not there: one answer.
            let copied = try await server.run(job(["/bin/cat", "in"], files: [["path": "in", "copy": allowed.file("data.txt")]]))
            #expect(copied.status == 200, "\(copied.text)")
            #expect((copied.process["stdout"] as? [String: Any])?["text"] as? String == "allowed content\n")
            let stdin = try await server.run(job(["/bin/cat"], extra: ["stdin": "in"], files: [["path": "in", "copy": allowed.file("data.txt")]]))
            #expect((stdin.process["stdout"] as? [String: Any])?["text"] as? String == "allowed content\n", "\(stdin.text)")
            for source in ["/etc/passwd", allowed.file("escape"), allowed.file("missing"), allowed.path + "/../" + URL(fileURLWithPath: allowed.path).lastPathComponent + "x"] {
                let answer = try await server.run(job(["/bin/true"], files: [["path": "in", "copy": source]]))
                #expect(answer.status == 400, "\(source): \(answer.text)")
                #expect(answer.json["path"] as? String == "files[0].copy")
                #expect(answer.json["error"] as? String == "\(source): no such file under this server's --host-files directories")
            }
        }
        // Without --host-files (the default) a job names no host file at all.
        try await withServer { server in
            for (body, path) in [(job(["/bin/true"], files: [["path": "in", "copy": allowed.file("data.txt")]]), "files[0].copy")] {
                let answer = try await server.run(body)
                #expect(answer.status == 400, "\(answer.text)")
                #expect(answer.json["path"] as? String == path)
                #expect((answer.json["error"] as? String)?.contains("--host-files") == true)
            }
        }
        #expect(throws: ServerError.self) {
            try CorralServer(configuration: testConfiguration { $0.hostFiles = [allowed.file("data.txt")] }, logger: .init(label: "test"))
        }
    }

    @Test("--max-disk: the working directory is a tmpfs of that size; a job that fills it is told, files that do not fit are a 400, no mount is left",
          .enabled(if: geteuid() == 0, "mounting a tmpfs needs root"))
    func diskLimit() async throws {
        for isolate in [false, true] {
            try await withServer(testConfiguration { $0.workdirLimit = 1 << 20; $0.isolate = isolate }) { server in
                let fill = try await server.run(job(["/bin/sh", "-c", "pwd; stat -f -c %T .; head -c 2000000 /dev/zero > big; echo $? >&2"]))
                #expect(fill.status == 200, "\(fill.text)")
                let lines = ((fill.process["stdout"] as? [String: Any])?["text"] as? String ?? "").split(separator: "\n").map(String.init)
                #expect(lines.last == "tmpfs", "\(fill.text)")
                #expect((fill.process["stderr"] as? [String: Any])?["text"] as? String == "head: error writing 'standard output': No space left on device\n1\n", "\(fill.text)")
                let warnings = fill.process["warnings"] as? [String] ?? []
                #expect(warnings.contains { $0.contains("working directory filled up (limit 1 MiB)") }, "\(warnings)")
                if !isolate, let directory = lines.first {
                    // Seen from the host, the job's directory (the program's working directory
                    // without isolation) is no mount point any more, and gone: soon after the
                    // answer, which does not wait for the unmount's grace period. Other tests'
                    // jobs may have theirs mounted meanwhile: only this one is looked for.
                    #expect(directory.contains("/corral-job-"), "\(directory)")
                    let mounted = { ((try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? "").contains(" \(directory) ") }
                    let deadline = ContinuousClock.now + .seconds(10)
                    while (mounted() || FileManager.default.fileExists(atPath: directory)) && ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(10))
                    }
                    #expect(!mounted(), "\(directory) is still mounted 10 s after the answer")
                    #expect(!FileManager.default.fileExists(atPath: directory))
                }
                let tooBig = try await server.run(job(["/bin/true"], files: [["path": "big", "content": String(repeating: "x", count: 1_100_000)]]))
                #expect(tooBig.status == 400, "\(tooBig.text)")
                #expect((tooBig.json["error"] as? String)?.contains("does not fit in the job's working directory (limit 1 MiB)") == true, "\(tooBig.text)")
                let fits = try await server.run(job(["/bin/sh", "-c", "head -c 500000 /dev/zero > half && echo ok"]))
                #expect((fits.process["stdout"] as? [String: Any])?["text"] as? String == "ok\n", "\(fits.text)")
                #expect((fits.process["warnings"] as? [String] ?? []).isEmpty, "\(fits.text)")
            }
        }
    }

    @Test("a body over --max-body is a 413")
    func bodyLimit() async throws {
        try await withServer(testConfiguration { $0.maxBody = 4096 }) { server in
            let big = job(["/bin/true"], files: [["path": "big", "content": String(repeating: "x", count: 8192)]])
            let answer = try await server.run(big)
            #expect(answer.status == 413, "\(answer.text)")
            try expectDocumented(answer)
            let small = try await server.run(job(["/bin/true"]))
            #expect(small.status == 200)
            #expect(try await server.metrics()["corral_rejected_requests_total{reason=\"too-large\"}"] == 1)
        }
    }

    @Test("a server that isolates refuses \"isolate\": false; its processes run in /box as nobody")
    func isolation() async throws {
        try await withServer { server in
            guard server.server.isolation != nil else {
                print("skipped: isolation is not available on this host")
                return
            }
            let refused = try await server.run(job(["/bin/true"], extra: ["isolate": false]))
            #expect(refused.status == 400)
            #expect(refused.json["path"] as? String == "processes[0].isolate")
            let inside = try await server.run(job(["/bin/sh", "-c", "pwd; id -u; hostname; cat input; echo made > out"],
                                                  files: [["path": "input", "content": "given\n"]], collect: [["path": "out"]]))
            #expect(inside.status == 200)
            let stdout = (inside.process["stdout"] as? [String: Any])?["text"] as? String
            #expect(stdout == "/box\n65534\ncorral\ngiven\n", "\(inside.text)")
            let files = inside.json["files"] as? [[String: Any]] ?? []
            #expect((files.first?["content"] as? [String: Any])?["text"] as? String == "made\n")
        }
    }

    @Test("with a token: 401 without it or with a wrong one, /v1/health stays open")
    func token() async throws {
        try await withServer(testConfiguration { $0.token = "s3cret-token" }) { server in
            for token in [nil, "wrong", "s3cret-tokeN", "s3cret-token-and-more"] {
                let answer = try await server.run(job(["/bin/true"]), token: token)
                #expect(answer.status == 401, "token \(token ?? "none")")
                #expect(answer.headers["www-authenticate"] == "Bearer")
                try expectDocumented(answer)
                #expect(try await server.get("/metrics", token: token).status == 401)
            }
            #expect(try await server.run(job(["/bin/true"]), token: "s3cret-token").status == 200)
            #expect(try await server.get("/v1/health").status == 200)
            #expect(try await server.get("/v1/version", token: "s3cret-token").status == 200)
            #expect(try await server.get("/metrics", token: "s3cret-token").text.contains("corral_rejected_requests_total{reason=\"unauthorized\"} 8"))
        }
        // Without a token on loopback: open.
        try await withServer { server in
            let answer = try await server.run(job(["/bin/true"]))
            #expect(answer.status == 200)
        }
    }

    @Test("a non-loopback address needs a token")
    func nonLoopback() throws {
        #expect(throws: ServerError.self) {
            try CorralServer(configuration: ServerConfiguration(host: "0.0.0.0"), logger: .init(label: "test"))
        }
        #expect(throws: ServerError.self) {
            try CorralServer(configuration: ServerConfiguration(defaults: JobDefaults(cpuTime: .seconds(120))), logger: .init(label: "test"))
        }
        _ = try CorralServer(configuration: ServerConfiguration(host: "0.0.0.0", token: "t", isolate: false), logger: .init(label: "test"))
    }
}
