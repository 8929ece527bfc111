import ArgumentParser
import Corral
import CorralCommandLine

/// `corral-server`: the long-running commands, started by `corral serve …` (which execs
/// this binary) or directly. Usage texts say `corral`, the name users type.
@main
enum ServerEntry {
    static func main() async {
        await CommandEntry.run(ServerRootCommand.self)
    }
}

struct ServerRootCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "corral",
        abstract: "Corral's long-running commands.",
        version: CorralVersion.string,
        subcommands: [ServeCommand.self, WorkerCommand.self]
    )
}
