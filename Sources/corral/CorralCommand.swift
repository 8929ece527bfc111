import ArgumentParser
import Corral
import CorralCommandLine

struct CorralCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "corral",
        abstract: "Run an untrusted program, and everything it spawns, under hard limits; report exactly what happened.",
        version: CorralVersion.string,
        subcommands: [RunCommand.self, DoctorCommand.self, CleanupCommand.self, ServeStub.self, WorkerStub.self]
    )
}
