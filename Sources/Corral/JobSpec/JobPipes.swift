import CCorral
#if canImport(Glibc)
import Glibc
#endif

/// The pipes of a job, made before any process starts. Every end goes to exactly one
/// process (the parser checked it), which takes it over.
struct JobPipes {
    private var ends: [String: (read: Int32, write: Int32)] = [:]

    mutating func make(_ names: [String]) throws(CorralError) {
        for name in names {
            var pair: [Int32] = [-1, -1]
            guard corral_pipe(&pair) == 0 else {
                throw CorralError(.system, "pipe for \"\(name)\": \(SetupFailure.describe(errno))")
            }
            ends[name] = (pair[0], pair[1])
        }
    }

    /// One end, now the caller's to close.
    mutating func take(_ name: String, _ end: PipeEndSpec.End) -> Int32 {
        guard let pair = ends[name] else { return -1 }
        if end == .read {
            ends[name]!.read = -1
            return pair.read
        }
        ends[name]!.write = -1
        return pair.write
    }

    /// Every end no process took.
    mutating func closeAll() {
        for pair in ends.values {
            if pair.read >= 0 { _ = close(pair.read) }
            if pair.write >= 0 { _ = close(pair.write) }
        }
        ends = [:]
    }
}
