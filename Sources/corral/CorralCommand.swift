import ArgumentParser

struct CorralCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "corral",
        abstract: "Run an untrusted program, and everything it spawns, under hard limits; report exactly what happened.",
        version: "0.1.0",
        subcommands: [RunCommand.self, DoctorCommand.self, CleanupCommand.self]
    )
}
