/// The command line of `corral-bench`.
struct Options: Sendable {
    var runs = 2000
    var warmup = 50
    var json = false
    var pingPongRounds = 10000
    var serverJobs = 1000
    var wholeProcessRuns = 300
    /// `--cli-against PATH`: the same whole-process commands with another `corral` too.
    var cliAgainst: String?
    /// Milliseconds between runs; nil measures back to back.
    var spacedMillis: Int?
    /// Runs of the accounting measurement (Corral's own CPU over a CPU-bound run); 0 skips it.
    var accountingRuns = 0
    var judgeTests = 100
    var judgeRepeats = 7
    var judgeHTTPTests = 100
    var checkerMegabytes = 256
    var storeRuns = 300
    /// `--queue N`: only the queue's benchmark, with N jobs (0: the others).
    var queueJobs = 0
    /// `--modes a,b`: only these library modes (by name); nil measures every one.
    var modes: [String]?

    static let usage = """
        usage: corral-bench [--runs N] [--warmup N] [--json] [--ping-pong N] [--server N] [--cli N] [--cli-against PATH] [--judge N] [--judge-http N] [--judge-repeats N] [--checkers M] [--store N] [--queue N] [--modes LIST]
          --runs N     timed runs of the baseline and of each mode (default 2000; 0 skips
                       them, for the other measurements alone)
          --warmup N   untimed runs of each before measuring (default 50)
          --json       print only JSON on standard output
          --ping-pong N  round trips of the interactive job (default 10000; 0 skips it)
          --server N   /bin/true jobs per measurement through the HTTP server and through
                       the library, at parallelism 1 and 2, without isolation and (where the
                       host allows it) isolated as `corral serve` does by default
                       (default 1000; 0 skips it)
          --cli N      runs of each whole-process command (`corral --version`, `corral run`
                       plain, process-group and isolated) interleaved with /bin/true
                       started the same way (default 300; 0 skips it)
          --cli-against PATH  also the same commands with the `corral` at PATH (another
                       build), in the same rounds: old and new binary side by side
          --spaced MS  instead: every run after a pause of MS milliseconds (a judge doing
                       other work between runs); process-group, cgroup and (where the host
                       has a writable v2 hierarchy) cgroup-v2, each against the process-group
                       run of the same iteration; no ping-pong or server measurement
          --accounting N  also: N runs of a spinner killed at 0.5 s of CPU, in process-group
                       and cgroup mode: Corral's own CPU per run (getrusage of the bench
                       process) against the run's, and how far past the limit it was killed
          --judge N    tests of a judge job against N separate jobs of the same run,
                       plain and (as root) isolated (default 100; 0 skips it)
          --judge-http N  the same through `corral serve`'s HTTP API: one request of N
                       tests against N requests, not isolated and (as root) isolated
                       (default 100; 0 skips it)
          --judge-repeats N  interleaved repeats of the judge measurements (default 7)
          --checkers M megabytes each built-in checker compares (default 256; 0 skips it)
          --store N    runs of a job with and without a stored 10 MiB input (default 300;
                       0 skips it)
          --modes LIST only these library modes, comma-separated (process-group, cgroup,
                       isolated, isolated-host-network), e.g. to profile one of them
          --queue N    only the durable queue's benchmark (needs CORRAL_BENCH_POSTGRES_URL):
                       its cost per job on PostgreSQL and SQLite, and N jobs run by 1, 2
                       and 4 corral workers against one corral serve
        """

    /// Why no options came out of the command line.
    enum ParseError: Error {
        /// `-h` or `--help`: print the usage and succeed.
        case help
        case invalid(String)
    }

    /// Parses the arguments after the program name.
    static func parse(_ arguments: some Sequence<String>) throws(ParseError) -> Options {
        var options = Options()
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            var name = argument
            var inlineValue: String?
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                inlineValue = String(argument[argument.index(after: equals)...])
            }
            switch name {
            case "--json":
                guard inlineValue == nil else { throw .invalid("--json takes no value") }
                options.json = true
            case "--runs":
                options.runs = try count(name, inlineValue ?? iterator.next(), minimum: 0)
            case "--ping-pong":
                options.pingPongRounds = try count(name, inlineValue ?? iterator.next(), minimum: 0)
            case "--server":
                options.serverJobs = try count(name, inlineValue ?? iterator.next(), minimum: 0)
            case "--cli":
                options.wholeProcessRuns = try count(name, inlineValue ?? iterator.next(), minimum: 0)
            case "--cli-against":
                guard let path = inlineValue ?? iterator.next(), path.hasPrefix("/") else { throw .invalid("--cli-against takes an absolute path") }
                options.cliAgainst = path
            case "--spaced":
                options.spacedMillis = try count(name, inlineValue ?? iterator.next(), minimum: 1)
            case "--accounting":
                options.accountingRuns = try count(name, inlineValue ?? iterator.next(), minimum: 0)
            case "--judge":
                options.judgeTests = try count(name, inlineValue ?? iterator.next(), minimum: 0)
            case "--judge-http":
                options.judgeHTTPTests = try count(name, inlineValue ?? iterator.next(), minimum: 0)
            case "--judge-repeats":
                options.judgeRepeats = try count(name, inlineValue ?? iterator.next(), minimum: 1)
            case "--checkers":
                options.checkerMegabytes = try count(name, inlineValue ?? iterator.next(), minimum: 0)
            case "--store":
                options.storeRuns = try count(name, inlineValue ?? iterator.next(), minimum: 0)
            case "--queue":
                options.queueJobs = try count(name, inlineValue ?? iterator.next(), minimum: 1)
            case "--modes":
                guard let list = inlineValue ?? iterator.next(), !list.isEmpty else { throw .invalid("--modes needs a list") }
                let names = list.split(separator: ",").map(String.init)
                let known = Set(BenchMode.every.map(\.name))
                if let unknown = names.first(where: { !known.contains($0) }) {
                    throw .invalid("--modes: unknown mode \"\(unknown)\" (known: \(BenchMode.every.map(\.name).joined(separator: ", ")))")
                }
                options.modes = names
            case "--warmup":
                options.warmup = try count(name, inlineValue ?? iterator.next(), minimum: 0)
            case "-h", "--help":
                throw .help
            default:
                throw .invalid("unknown option \"\(argument)\"")
            }
        }
        return options
    }

    private static func count(_ name: String, _ value: String?, minimum: Int) throws(ParseError) -> Int {
        guard let value else { throw .invalid("\(name) needs a value") }
        guard let number = Int(value), number >= minimum else {
            throw .invalid("\(name): expected an integer >= \(minimum), got \"\(value)\"")
        }
        return number
    }
}
