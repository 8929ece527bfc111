import ArgumentParser
import Corral
import CorralCommandLine
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

struct CleanupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cleanup",
        abstract: "Kill what is left in run cgroups of Corral processes that died, and remove those cgroups and their job directories, and the persisted mount templates.",
        discussion: "Cgroups of live Corral processes are never touched. Exit 1 when a cgroup could not be removed."
    )

    @OptionGroup var containmentOptions: ContainmentOptions

    @Flag(help: "Print the summary as JSON.")
    var json = false

    func run() throws {
        var summary = StaleCgroups.clean(configuration: containmentOptions.configuration)
        let templates = TemplateStore.removeAll()
        summary.templatesRemoved = templates.removed
        if let failure = templates.failure { summary.failures.append(failure) }
        if json {
            try JSONOutput.write(summary)
        } else {
            try StandardOutput.write("removed \(summary.cgroupsRemoved) stale run cgroup(s) and \(summary.jobDirectoriesRemoved) job directory(ies) and \(summary.templatesRemoved) persisted mount template(s), killed \(summary.processesKilled) process(es)\n")
            for failure in summary.failures { StandardError.write("corral: \(failure)\n") }
        }
        if !summary.failures.isEmpty { throw ExitCode(1) }
    }
}
