import Foundation
import SystemPackage

/// Corral's own output on descriptor 1 (reports, `doctor`, `cleanup`). SIGPIPE is ignored
/// (see ``Entry``), so a reader that has gone away (`corral ... | head`) is an error here,
/// said on stderr with exit 125, instead of a death that skips the exit hook which
/// removes Corral's pooled cgroups.
enum StandardOutput {
    struct Failure: Error, CustomStringConvertible {
        let errno: Errno
        var description: String { "writing to stdout: \(errno)" }
    }

    static func write(_ data: Data) throws(Failure) {
        do {
            _ = try FileDescriptor.standardOutput.writeAll(data)
        } catch let error as Errno {
            throw Failure(errno: error)
        } catch {
            throw Failure(errno: .ioError)
        }
    }

    static func write(_ text: String) throws(Failure) {
        try write(Data(text.utf8))
    }
}
