import ArgumentParser
import CCorral
import CCorralArguments
import CorralServer
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where the shared queue is: `--queue URL` (the command's own flag: `serve`'s also takes the
/// number of waiting jobs), `--queue-file FILE` (the URL read once from a file only its owner
/// can read) or `CORRAL_QUEUE_URL`. A command line is readable by every process in
/// `/proc/PID/cmdline`: the password of a `--queue` URL is overwritten there before main runs
/// (CCorral's argv_secret.c), and the URL as given is taken from there. The variable is removed
/// from this process's environment once read, so nothing started later inherits it.
struct QueueOption: ParsableArguments {
    @Option(name: .customLong("queue-file"), help: ArgumentHelp("The shared queue's URL (postgres://USER:PASSWORD@HOST:PORT/DB), read once from this file (chmod 600); default: $CORRAL_QUEUE_URL. Without either, corral serve keeps its own SQLite queue.", valueName: "file"))
    var queueFile: String?

    /// The URL a parsed `--queue` value stands for: the value as given before its password was
    /// hidden (the parser may see either form, depending on when the runtime copied argv).
    static func given(_ parsed: String) throws -> String {
        guard let masked = corral_queue_argument_masked().map({ String(cString: $0) }),
              let original = corral_queue_argument_original().map({ String(cString: $0) }) else {
            return parsed // no password in it: nothing was hidden
        }
        guard parsed == masked || parsed == original else {
            throw ValidationError("--queue: the URL changed after start; give it once")
        }
        return original
    }

    /// The shared queue's URL: `flag` (a `--queue` URL), the file, or the variable; giving
    /// both flags is refused.
    func url(flag: String? = nil) throws -> String? {
        if let flag {
            guard queueFile == nil else { throw ValidationError("--queue URL and --queue-file: give one") }
            if let value = getenv("CORRAL_QUEUE_URL") {
                memset(value, 0, strlen(value))
                unsetenv("CORRAL_QUEUE_URL")
            }
            let url = try Self.given(flag)
            guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
                throw ValidationError("--queue: the shared queue's URL is postgres://USER:PASSWORD@HOST[:PORT]/DATABASE")
            }
            return url
        }
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
