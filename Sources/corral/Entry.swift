import Corral
import CorralCommandLine
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// `corral`: the commands a judge starts once per run (`run`, `doctor`, `cleanup`) in a
/// small binary that loads no server code; `serve` (and the other long-running commands)
/// are handed to `corral-server` next to it (see ``ServerCommands``).
@main
enum Entry {
    /// Not `async`: an async main hands the main thread to Dispatch (`dispatch_main`, which
    /// ends the thread and drains the main queue on a worker), starting threads a one-shot
    /// `corral run` does not need. Lines that need tasks start them here (``startTasks(_:)``).
    static func main() {
        let arguments = commandLineArguments()
        ServerCommands.handOver(arguments)
        if arguments == ["--version"] {
            print(CorralVersion.string)
            exit(0)
        }
        if let fast = RunFastPath.parse(arguments), (try? fast.validate()) != nil {
            CommandEntry.ignoreSIGPIPE()
            if fast.runsBlocking {
                CommandEntry.finishBlocking(CorralCommand.self) { try fast.runBlocking() }
            }
            startTasks { await CommandEntry.finish(CorralCommand.self) { try await fast.run() } }
        }
        startTasks { await CommandEntry.run(CorralCommand.self, arguments: arguments) }
    }

    /// The arguments after the program's name, read from argv here: the standard library's
    /// `CommandLine.arguments` makes its array through a lookup of the array's type by its
    /// mangled name (the runtime's demangler), about a tenth of a `corral --version`'s CPU.
    private static func commandLineArguments() -> [String] {
        let argv = CommandLine.unsafeArgv
        var count = 0
        while count + 1 < Int(CommandLine.argc), argv[count + 1] != nil { count += 1 }
        // Made in place (inlinable code: this module's own access to the array's type).
        return [String](unsafeUninitializedCapacity: count) { buffer, initialized in
            for index in 0..<count {
                (buffer.baseAddress! + index).initialize(to: String(cString: argv[index + 1]!))
            }
            initialized = count
        }
    }

    /// What an `async` main does: `body` as a task, and the main thread given to Dispatch.
    /// Never inlined: a blocking run line would otherwise pay for the task's metadata (about
    /// 2 % of its CPU) before it branches away.
    @inline(never)
    private static func startTasks(_ body: @escaping @Sendable () async -> Never) -> Never {
        Task { await body() }
        dispatchMain()
    }
}
