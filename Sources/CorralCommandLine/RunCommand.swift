import ArgumentParser
import Corral

public struct RunCommand: AsyncParsableCommand {
    public init() {}

    public static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a program under limits and report what happened.",
        discussion: """
        Exit code: the program's own when it exited; 128+N when a signal N that Corral did not \
        send ended it; 124 for any limit; 125 for Corral's own errors; 126 program not executable; \
        127 program not found; 130 cancelled (SIGINT, SIGTERM or SIGHUP to Corral).
        """
    )

    @OptionGroup var limitOptions: LimitOptions

    @OptionGroup var containmentOptions: ContainmentOptions

    @OptionGroup var userRangeOption: UserRangeOption

    @Option(help: ArgumentHelp("Standard input from this file (default /dev/null).", valueName: "file"))
    var stdin: String?

    @Option(help: ArgumentHelp("Standard output to this file, created or truncated (default: Corral's).", valueName: "file"))
    var stdout: String?

    @Option(help: ArgumentHelp("Standard error to this file, created or truncated (default: Corral's).", valueName: "file"))
    var stderr: String?

    @Option(help: ArgumentHelp("The program's working directory.", valueName: "dir"))
    var dir: String?

    @Option(name: .customLong("env"), help: ArgumentHelp("Set a variable (repeatable). The default environment is PATH=/usr/local/bin:/usr/bin:/bin only.", valueName: "K=V"))
    var environment: [String] = []

    @Flag(name: .customLong("inherit-env"), help: "Start from Corral's own environment instead of the clean default.")
    var inheritEnvironment = false

    @Option(help: ArgumentHelp("Write the JSON report here; '-' is stdout, allowed only with --stdout.", valueName: "file"))
    var report: String?

    @Flag(help: "No summary line on stderr.")
    var quiet = false

    @Flag(help: "Isolate the program: new PID, mount, IPC, UTS and network namespaces, Corral's init as PID 1, a fresh /proc, an unprivileged user, no capabilities, no_new_privs. Needs root.")
    var isolate = false

    @Option(help: ArgumentHelp("With --isolate: none (a loopback only, the default) or host.", valueName: "mode"))
    var network: Isolation.Network?

    @Option(help: ArgumentHelp("The program's user, isolated or not (as root the default is 65534:65534, nobody; 0 only when asked for; without root only the caller's).", valueName: "UID[:GID]"))
    var user: String?

    @Option(help: ArgumentHelp("With --isolate: make a host path visible inside (repeatable), read-only unless :rw.", valueName: "SRC[:DST][:rw]"))
    var bind: [String] = []

    @Option(help: ArgumentHelp("With --isolate: a private tmpfs inside (repeatable).", valueName: "DST[:SIZE]"))
    var tmpfs: [String] = []

    @Option(help: ArgumentHelp("With --isolate: the seccomp profile, default or none.", valueName: "profile"))
    var seccomp: String?

    @Option(name: .customLong("seccomp-policy"), help: ArgumentHelp("With --isolate: a seccomp policy file (allow, deny, errno N per syscall name; default ACTION).", valueName: "file"))
    var seccompPolicy: String?

    @Option(help: ArgumentHelp("Run a job spec (JSON) from this file, '-' for stdin; the job report goes to stdout unless --report.", valueName: "file"))
    var spec: String?

    @Option(name: .customLong("file-store"), help: ArgumentHelp("With --spec: the file store for files[].fileId and collect[].store (the server's is \(FileStore.defaultDirectory) by default).", valueName: "dir"))
    var fileStore: String?

    @Option(name: .customLong("file-store-max"), help: ArgumentHelp("With --file-store: the most the store may hold (least recently used files are evicted).", valueName: "size"))
    var fileStoreMax = "1G"

    @Option(name: .customLong("stdout-max"), parsing: .unconditional, help: ArgumentHelp("Capture stdout into the report, cut at this size (the program is killed past it, unless --stdout-on-limit truncate).", valueName: "size"))
    var stdoutMax: String?

    @Option(name: .customLong("stderr-max"), parsing: .unconditional, help: ArgumentHelp("Capture stderr into the report, cut at this size.", valueName: "size"))
    var stderrMax: String?

    @Option(name: .customLong("stdout-on-limit"), help: ArgumentHelp("With a captured stdout: kill (the default: past the cap the program is killed, output-limit) or truncate (the capture is cut, the rest read and dropped, and the program goes on).", valueName: "action"))
    var stdoutOnLimit: String?

    @Option(name: .customLong("stderr-on-limit"), help: ArgumentHelp("With a captured stderr: kill (the default) or truncate.", valueName: "action"))
    var stderrOnLimit: String?

    @Option(name: .customLong("ignore-signal"), help: ArgumentHelp("Start the program with this signal ignored, e.g. SIGPIPE (repeatable); every other signal starts at its default.", valueName: "SIGNAME"))
    var ignoreSignals: [String] = []

    @Option(name: .customLong("file"), help: ArgumentHelp("Put the host file PATH into the job's working directory as NAME (repeatable); the program runs there.", valueName: "NAME=PATH"))
    var files: [String] = []

    @Option(name: .customLong("collect"), help: ArgumentHelp("Return this file of the working directory in the report (repeatable).", valueName: "NAME"))
    var collect: [String] = []

    @Option(help: ArgumentHelp("Pin the run to these CPUs, e.g. 1 or 0-1,3 (affinity, and with cgroup containment a cpuset the program cannot widen).", valueName: "list"))
    var cpus: String?

    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The program and its arguments (after --).", valueName: "program"))
    var command: [String] = []

    /// What was given, as a plain value: everything after parsing works on it (and the fast
    /// path of ``RunFastPath`` makes the same value without ArgumentParser).
    public var arguments: RunArguments {
        RunArguments(
            limitOptions: limitOptions.values, containmentOptions: containmentOptions.values,
            userRangeOption: UserRangeArgument(userRange: userRangeOption.userRange),
            stdin: stdin,
            stdout: stdout,
            stderr: stderr,
            dir: dir,
            environment: environment,
            inheritEnvironment: inheritEnvironment,
            report: report,
            quiet: quiet,
            isolate: isolate,
            network: network,
            user: user,
            bind: bind,
            tmpfs: tmpfs,
            seccomp: seccomp,
            seccompPolicy: seccompPolicy,
            spec: spec,
            fileStore: fileStore,
            fileStoreMax: fileStoreMax,
            stdoutMax: stdoutMax,
            stderrMax: stderrMax,
            stdoutOnLimit: stdoutOnLimit,
            stderrOnLimit: stderrOnLimit,
            ignoreSignals: ignoreSignals,
            files: files,
            collect: collect,
            cpus: cpus,
            command: command
        )
    }

    public func validate() throws {
        try arguments.validate()
    }

    public func run() async throws {
        try await arguments.run()
    }
}
