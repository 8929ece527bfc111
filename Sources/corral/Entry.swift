import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

/// Corral's own errors and refused flags exit 125 (not ArgumentParser's 64), so they never
/// look like an exit code of the program.
@main
enum Entry {
    static func main() async {
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
