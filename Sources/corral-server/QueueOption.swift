import ArgumentParser
import CorralServer
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where the shared queue is: `--queue-file FILE` (the URL read once from a file only its owner
/// can read) or `CORRAL_QUEUE_URL`. Never a flag's value: a command line is readable by every
/// process in `/proc/PID/cmdline`. The variable is removed from this process's environment once
/// read, so nothing started later inherits it.
struct QueueOption: ParsableArguments {
    @Option(name: .customLong("queue-file"), help: ArgumentHelp("The shared queue's URL (postgres://USER:PASSWORD@HOST:PORT/DB), read once from this file (chmod 600); default: $CORRAL_QUEUE_URL. Without either, corral serve keeps its own SQLite queue.", valueName: "file"))
    var queueFile: String?

    func url() throws -> String? {
        var fromEnvironment: String?
        if let value = getenv("CORRAL_QUEUE_URL") {
            fromEnvironment = String(cString: value)
            // Wiped where it lies (the process's first environment, which /proc/PID/environ
            // shows), then removed: no later reader of either sees it.
            memset(value, 0, strlen(value))
            unsetenv("CORRAL_QUEUE_URL")
        }
        if let queueFile {
            do throws(ServerError) { return try TokenFile.read(queueFile, flag: "--queue-file") } catch { throw ValidationError(error.description) }
        }
        return fromEnvironment.flatMap { $0.isEmpty ? nil : $0 }
    }
}
