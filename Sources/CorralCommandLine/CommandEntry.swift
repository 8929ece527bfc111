import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

/// Corral's own errors and refused flags exit 125 (not ArgumentParser's 64), so they never
/// look like an exit code of the program.
public enum ExitCodes {
    public static let corralError: Int32 = 125
}

/// What `main` does in both executables (`corral` and `corral-server`): parse, run, and
/// map every error to one line on stderr and exit 125.
public enum CommandEntry {
    public static func run<Root: ParsableCommand>(_ root: Root.Type, arguments: [String]? = nil) async -> Never {
        ignoreSIGPIPE()
        await finish(Root.self) {
            var command = try Root.parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        }
    }

    /// A reader of Corral's stdout or stderr that goes away makes a write fail (reported,
    /// exit 125) instead of killing Corral before its exit hook removes its cgroups. The
    /// program gets SIGPIPE's default back: the child resets every signal before exec.
    public static func ignoreSIGPIPE() {
        signal(SIGPIPE, SIG_IGN)
    }

    /// ``finish(_:_:)`` for a body that runs on the calling thread (no task, no executor).
    public static func finishBlocking<Root: ParsableCommand>(_ root: Root.Type, _ body: () throws -> Void) -> Never {
        do {
            try body()
            exit(0)
        } catch {
            exitFor(Root.self, error)
        }
    }

    /// Runs `body` and exits: 0 when it returns, the code of an ``ExitCode`` it throws,
    /// else one line on stderr ("corral: …", as ArgumentParser words it) and 125.
    public static func finish<Root: ParsableCommand>(_ root: Root.Type, _ body: @Sendable () async throws -> Void) async -> Never {
        do {
            try await body()
            exit(0)
        } catch {
            exitFor(Root.self, error)
        }
    }

    /// Exits with the code of an ``ExitCode``, else with one line on stderr and 125.
    private static func exitFor<Root: ParsableCommand>(_ root: Root.Type, _ error: any Error) -> Never {
        if let code = error as? ExitCode { exit(code.rawValue) }
        if Root.exitCode(for: error) == .success {
            print(Root.fullMessage(for: error))
            exit(0)
        }
        StandardError.write("corral: \(Root.message(for: error))\n")
        exit(ExitCodes.corralError)
    }
}
