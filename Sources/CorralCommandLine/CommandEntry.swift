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

    /// Runs `body` and exits: 0 when it returns, the code of an ``ExitCode`` it throws,
    /// else one line on stderr ("corral: …", as ArgumentParser words it) and 125.
    public static func finish<Root: ParsableCommand>(_ root: Root.Type, _ body: @Sendable () async throws -> Void) async -> Never {
        do {
            try await body()
            exit(0)
        } catch let code as ExitCode {
            exit(code.rawValue)
        } catch {
            if Root.exitCode(for: error) == .success {
                print(Root.fullMessage(for: error))
                exit(0)
            }
            StandardError.write("corral: \(Root.message(for: error))\n")
            exit(ExitCodes.corralError)
        }
    }
}
