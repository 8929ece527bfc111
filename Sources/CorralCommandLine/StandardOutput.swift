import SystemPackage

/// Corral's own output on descriptor 1 (reports, `doctor`, `cleanup`). SIGPIPE is ignored
/// (see ``CommandEntry``), so a reader that has gone away (`corral ... | head`) is an error here,
/// said on stderr with exit 125, instead of a death that skips the exit hook which
/// removes Corral's pooled cgroups.
public enum StandardOutput {
    public struct Failure: Error, CustomStringConvertible {
        public let errno: Errno
        public var description: String { "writing to stdout: \(errno)" }
    }

    public static func write(_ bytes: some Sequence<UInt8>) throws(Failure) {
        do {
            _ = try FileDescriptor.standardOutput.writeAll(bytes)
        } catch let error as Errno {
            throw Failure(errno: error)
        } catch {
            throw Failure(errno: .ioError)
        }
    }

    public static func write(_ text: String) throws(Failure) {
        try write(text.utf8)
    }
}
