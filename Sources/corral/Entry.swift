import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

/// Corral's own errors and refused flags exit 125 (not ArgumentParser's 64), so they never
/// look like an exit code of the program.
@main
enum Entry {
    static func main() async {
        // A reader of Corral's stdout or stderr that goes away makes a write fail (reported,
        // exit 125) instead of killing Corral before its exit hook removes its cgroups. The
        // program gets SIGPIPE's default back: the child resets every signal before exec.
        signal(SIGPIPE, SIG_IGN)
        do {
            var command = try CorralCommand.parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            exit(0)
        } catch let code as ExitCode {
            exit(code.rawValue)
        } catch {
            if CorralCommand.exitCode(for: error) == .success {
                print(CorralCommand.fullMessage(for: error))
                exit(0)
            }
            StandardError.write("corral: \(CorralCommand.message(for: error))\n")
            exit(ExitCodes.corralError)
        }
    }
}

enum ExitCodes {
    static let corralError: Int32 = 125
}
