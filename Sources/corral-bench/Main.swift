#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `corral-bench`: what running `/bin/true` through Corral costs next to a bare
/// `posix_spawn` + `wait4`. Each iteration runs the baseline once and every mode once,
/// one after the other in one process, so machine noise falls on all of them alike.
@main
struct CorralBench {
    static func main() async {
        // `corral-bench | head` must not end the bench before its exit hook removes the
        // cgroups Corral pooled; the programs it starts get every signal at its default.
        signal(SIGPIPE, SIG_IGN)
        let options: Options
        do {
            options = try Options.parse(CommandLine.arguments.dropFirst())
        } catch {
            switch error {
            case .help:
                Console.out(Options.usage + "\n")
                exit(0)
            case .invalid(let message):
                Console.error("corral-bench: \(message)\n" + Options.usage + "\n")
                exit(2)
            }
        }

        if options.queueJobs > 0 {
            guard let json = await QueueBench.run(jobs: options.queueJobs) else { exit(1) }
            Console.out(json + "\n")
            exit(0)
        }

        if let spacing = options.spacedMillis {
            var result = await SpacedBench.measure(options, spacingMillis: spacing)
            if options.accountingRuns > 0 { result.accounting = await AccountingBench.measure(runs: options.accountingRuns) }
            await finish(result, options)
        }
        var result = await measure(options, modes: options.runs > 0 ? BenchMode.selected(options.modes) : [])
        if options.accountingRuns > 0 { result.accounting = await AccountingBench.measure(runs: options.accountingRuns) }
        if options.pingPongRounds > 0 {
            if let program = PingPongBench.compileFixture() {
                result.pingPong = await PingPongBench.measure(program: program, roundTrips: options.pingPongRounds, repeats: 7)
                if result.pingPong == nil { Console.error("corral-bench: the ping-pong job failed\n") }
                unlink(program)
            } else {
                Console.error("corral-bench: could not compile Tests/Fixtures/pingpong.c; ping-pong skipped\n")
            }
        }

        if options.serverJobs > 0 {
            for isolated in [false, true] {
                guard let measured = await ServerBench.measure(jobs: options.serverJobs, isolated: isolated) else {
                    Console.error("corral-bench: the server benchmark (\(isolated ? "isolated" : "not isolated")) failed\n")
                    continue
                }
                // Without isolation on the host, the second is the same as the first.
                if isolated && !measured.isolated { break }
                result.server.append(measured)
            }
        }

        if options.storeRuns > 0 {
            result.store = await StoreBench.measure(runs: options.storeRuns)
            if result.store == nil { Console.error("corral-bench: the stored-file benchmark failed\n") }
            // Isolated (as root: the server's default, where stdin is the store's own file) and
            // not isolated (where it is a sealed copy).
            for (mode, isolation) in JudgeBench.modes.reversed() {
                if let measured = await StoreBench.measureTestInput(jobs: max(4, options.storeRuns / 20), mode: mode, isolation: isolation) {
                    result.storedTestInput.append(measured)
                } else {
                    Console.error("corral-bench: the stored test input benchmark (\(mode)) failed\n")
                }
            }
        }

        if options.wholeProcessRuns > 0 {
            var commands = WholeProcessBench.commands(corral: WholeProcessBench.corralPath())
            if let other = options.cliAgainst {
                commands += WholeProcessBench.commands(corral: other, label: " [\(other)]")
            }
            result.wholeProcess = WholeProcessBench.measure(runs: options.wholeProcessRuns, warmup: 10, commands: commands)
        }

        await finish(result, options)
    }

    /// Prints the result and exits: 1 when any run failed.
    static func finish(_ result: BenchResult, _ options: Options) async -> Never {
        if !options.json { Console.out(result.table + "\n") }
        Console.out(result.json)
        // The judge's figures: on stdout after the table, on stderr with --json.
        let json = options.json
        let judgeOut = { (text: String) in if json { Console.error(text) } else { Console.out(text) } }
        if options.judgeTests > 0 {
            for (mode, isolation) in JudgeBench.modes {
                if let judge = await JudgeBench.measure(tests: options.judgeTests, repeats: options.judgeRepeats, mode: mode, isolation: isolation) {
                    judgeOut(judge.text + "\n" + "{\"judge\": \(judge.json)}\n")
                } else {
                    Console.error("corral-bench: the judge job (\(mode)) failed\n")
                }
            }
        }
        if options.judgeHTTPTests > 0 {
            for isolated in geteuid() == 0 ? [false, true] : [false] {
                if let judge = await JudgeHTTPBench.measure(tests: options.judgeHTTPTests, repeats: options.judgeRepeats, isolated: isolated) {
                    judgeOut(judge.text + "\n" + "{\"judgeHTTP\": \(judge.json)}\n")
                } else {
                    Console.error("corral-bench: the judge job over HTTP (\(isolated ? "isolated" : "not isolated")) failed\n")
                }
            }
        }
        if options.checkerMegabytes > 0 {
            for (name, rate) in CheckerBench.checkers(megabytes: options.checkerMegabytes) {
                judgeOut("checker \(name): \(Int(rate)) MB/s over \(options.checkerMegabytes) MiB\n")
            }
        }

        let failed = result.baselineFailures + result.modes.reduce(0) { $0 + $1.failures }
            + (result.wholeProcess?.commands.reduce(0) { $0 + $1.failures } ?? 0)
        if failed > 0 {
            if result.baselineFailures > 0 {
                Console.error("corral-bench: \(result.baselineFailures) of \(options.runs) bare spawns failed\n")
            }
            for command in result.wholeProcess?.commands ?? [] where command.failures > 0 {
                Console.error("corral-bench: \(command.failures) of \(options.wholeProcessRuns) runs of \(command.name) did not exit 0\n")
            }
            for mode in result.modes where mode.failures > 0 {
                Console.error("corral-bench: \(mode.failures) of \(options.runs) runs of mode \(mode.name) did not end ok\n")
            }
            exit(1)
        }
        exit(0)
    }

    static func measure(_ options: Options, modes: [BenchMode]) async -> BenchResult {
        let bare = BareSpawn()

        for _ in 0..<options.warmup {
            _ = bare.run()
            for mode in modes { _ = await mode.run() }
        }

        var baselineSamples: [Double] = []
        baselineSamples.reserveCapacity(options.runs)
        var baselineFailures = 0
        var modeSamples = Array(repeating: [Double](), count: modes.count)
        for index in modeSamples.indices { modeSamples[index].reserveCapacity(options.runs) }
        var modeFailures = Array(repeating: 0, count: modes.count)

        for _ in 0..<options.runs {
            let start = monotonicNanos()
            let ok = bare.run()
            baselineSamples.append(micros(from: start, to: monotonicNanos()))
            if !ok { baselineFailures += 1 }

            for (index, mode) in modes.enumerated() {
                let start = monotonicNanos()
                let ok = await mode.run()
                modeSamples[index].append(micros(from: start, to: monotonicNanos()))
                if !ok { modeFailures[index] += 1 }
            }
        }

        return BenchResult(
            runs: options.runs,
            warmup: options.warmup,
            baseline: Summary(baselineSamples),
            baselineFailures: baselineFailures,
            modes: modes.indices.map {
                ModeResult(name: modes[$0].name, summary: Summary(modeSamples[$0]), failures: modeFailures[$0])
            }
        )
    }
}
