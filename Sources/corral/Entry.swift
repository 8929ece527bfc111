import Corral
import CorralCommandLine
#if canImport(Glibc)
import Glibc
#endif

/// `corral`: the commands a judge starts once per run (`run`, `doctor`, `cleanup`) in a
/// small binary that loads no server code; `serve` (and the other long-running commands)
/// are handed to `corral-server` next to it (see ``ServerCommands``).
@main
enum Entry {
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        ServerCommands.handOver(arguments)
        if arguments == ["--version"] {
            print(CorralVersion.string)
            exit(0)
        }
        if let fast = RunFastPath.parse(arguments), (try? fast.validate()) != nil {
            CommandEntry.ignoreSIGPIPE()
            await CommandEntry.finish(CorralCommand.self) { try await fast.run() }
        }
        await CommandEntry.run(CorralCommand.self, arguments: arguments)
    }
}
