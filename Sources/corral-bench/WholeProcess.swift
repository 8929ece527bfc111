#if canImport(Glibc)
import Glibc
#endif

/// Whole-process cost, as a judge that starts `corral` once per run pays it: each command is
/// started by `posix_spawn` (stdin, stdout and stderr on /dev/null), reaped by `wait4`, and
/// timed from spawn to reap, interleaved with `/bin/true` started the same way, so the
/// machine's noise falls on both. CPU and peak resident memory come from `wait4`'s rusage
/// (children included); the peak resident set from one more start under GNU time.
struct WholeProcessBench {
    struct Command: Sendable {
        let name: String
        let arguments: [String]
    }

    struct Result: Sendable {
        let name: String
        let wall: Summary
        let cpu: Summary
        let maxResidentKiB: Int
        let failures: Int
    }

    struct Measured: Sendable {
        let runs: Int
        let baseline: Result
        let commands: [Result]

        var table: String {
            var lines = ["whole process, \(runs) runs of each, interleaved with /bin/true (wall and CPU as medians; ratio = median / /bin/true's)"]
            lines.append(pad("command", 46) + pad("wall µs", 10) + pad("ratio", 8) + pad("p10 µs", 10) + pad("CPU µs", 10) + pad("ratio", 8) + pad("max RSS", 10) + "failed")
            for result in [baseline] + commands {
                lines.append(pad(result.name, 46) + pad(fixed(result.wall.median, 0), 10) + pad(fixed(result.wall.median / baseline.wall.median, 2), 8)
                    + pad(fixed(result.wall.p10, 0), 10)
                    + pad(fixed(result.cpu.median, 0), 10) + pad(fixed(result.cpu.median / baseline.cpu.median, 2), 8)
                    + pad(result.maxResidentKiB == 0 ? "-" : "\(result.maxResidentKiB / 1024).\(result.maxResidentKiB % 1024 * 10 / 1024) MiB", 10) + "\(result.failures)")
            }
            return lines.joined(separator: "\n")
        }

        var json: String {
            let objects = ([baseline] + commands).map { result in
                "{\"name\": \"\(result.name)\", \"medianMicros\": \(fixed(result.wall.median, 1)), \"p10Micros\": \(fixed(result.wall.p10, 1)), "
                    + "\"ratio\": \(fixed(result.wall.median / baseline.wall.median, 3)), "
                    + "\"cpuMicros\": \(fixed(result.cpu.median, 1)), \"cpuRatio\": \(fixed(result.cpu.median / baseline.cpu.median, 3)), "
                    + "\"maxResidentKiB\": \(result.maxResidentKiB), \"failures\": \(result.failures)}"
            }
            return "{\"runs\": \(runs), \"commands\": [\(objects.joined(separator: ", "))]}"
        }
    }

    /// The commands measured, with the `corral` next to this bench.
    static func commands(corral: String, label: String = "") -> [Command] {
        [
            Command(name: "corral --version" + label, arguments: [corral, "--version"]),
            Command(name: "corral run (cgroup where available)" + label, arguments: [corral, "run", "--quiet", "--", "/bin/true"]),
            Command(name: "corral run --containment process-group" + label, arguments: [corral, "run", "--quiet", "--containment", "process-group", "--", "/bin/true"]),
            Command(name: "corral run --isolate" + label, arguments: [corral, "run", "--quiet", "--isolate", "--", "/bin/true"]),
        ]
    }

    static func measure(runs: Int, warmup: Int, commands: [Command]) -> Measured {
        let baselineCommand = Command(name: "/bin/true", arguments: ["/bin/true"])
        let all = [baselineCommand] + commands
        var wall = Array(repeating: [Double](), count: all.count)
        var cpu = Array(repeating: [Double](), count: all.count)
        var maxResident = Array(repeating: 0, count: all.count)
        var failures = Array(repeating: 0, count: all.count)
        for round in 0..<(warmup + runs) {
            for (index, command) in all.enumerated() {
                guard let sample = run(command.arguments) else {
                    if round >= warmup { failures[index] += 1 }
                    continue
                }
                guard round >= warmup else { continue }
                wall[index].append(sample.wallMicros)
                cpu[index].append(sample.cpuMicros)
            }
        }
        // A child of posix_spawn shares this process's memory until it execs, and the kernel
        // counts that in the child's peak (a fork's copy too). GNU time, small itself, forks
        // the command and reports the command's own peak; without it the peak is left out.
        for (index, command) in all.enumerated() {
            maxResident[index] = peakResidentKiB(command.arguments) ?? 0
        }
        let results = all.indices.map {
            Result(name: all[$0].name, wall: Summary(wall[$0]), cpu: Summary(cpu[$0]), maxResidentKiB: maxResident[$0], failures: failures[$0])
        }
        return Measured(runs: runs, baseline: results[0], commands: Array(results.dropFirst()))
    }

    private struct Sample {
        let wallMicros: Double
        let cpuMicros: Double
        let maxResidentKiB: Int
    }

    /// One start and reap; nil when it could not start or did not exit 0.
    private static func run(_ arguments: [String]) -> Sample? {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF))

        let argv = arguments.map { strdup($0) } + [nil]
        let envp = [strdup("PATH=/usr/bin:/bin"), nil]
        defer { argv.forEach { free($0) }; envp.forEach { free($0) } }

        var pid: pid_t = 0
        let start = monotonicNanos()
        guard posix_spawn(&pid, arguments[0], &actions, &attributes, argv, envp) == 0 else { return nil }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 {
            guard errno == EINTR else { return nil }
        }
        let end = monotonicNanos()
        guard status & 0x7f == 0, (status >> 8) & 0xff == 0 else { return nil }
        let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e6 + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec)
        return Sample(wallMicros: Double(end - start) / 1000, cpuMicros: cpu, maxResidentKiB: usage.ru_maxrss)
    }

    /// The command's peak resident set in KiB, measured by `/usr/bin/time -f %M`.
    private static func peakResidentKiB(_ arguments: [String]) -> Int? {
        guard access("/usr/bin/time", X_OK) == 0 else { return nil }
        var template = Array("/tmp/corral-bench-rss-XXXXXX".utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else { return nil }
        let path = String(cString: template)
        defer { close(descriptor); unlink(path) }
        guard run(["/usr/bin/time", "-f", "%M", "-o", path] + arguments) != nil else { return nil }
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = pread(descriptor, &buffer, buffer.count, 0)
        guard count > 0 else { return nil }
        return Int(String(decoding: buffer[..<count], as: UTF8.self).split(separator: "\n").last ?? "")
    }

    /// `corral` in the directory of this executable.
    static func corralPath() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let path = length > 0 ? String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self) : "./corral-bench"
        return String(path[...(path.lastIndex(of: "/") ?? path.startIndex)]) + "corral"
    }

    private static func fixed(_ value: Double, _ decimals: Int) -> String {
        guard value.isFinite else { return "null" }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = Int64((value * scale).rounded())
        if decimals == 0 { return String(scaled) }
        let whole = scaled / Int64(scale), fraction = String(abs(scaled % Int64(scale)))
        return "\(whole)." + String(repeating: "0", count: decimals - fraction.count) + fraction
    }

    private static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }
}
