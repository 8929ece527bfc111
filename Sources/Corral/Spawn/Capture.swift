#if canImport(Glibc)
import Glibc
#endif

/// One stream the reaper reads as it fills, from the read end of a pipe: either captured
/// into the report (the first `max` bytes kept), or relayed to a file Corral inherited
/// (`sink`) with the first `max` bytes written there. A stream past `max` ends the run,
/// unless a capture says `.truncate`: then the rest is read and dropped as it comes.
final class Capture: @unchecked Sendable {
    /// "stdout", "stderr", or "stdout and stderr" for one relay of both.
    let stream: String
    let descriptor: Int32
    let max: UInt64
    /// `.truncate`: past `max` the run goes on (the rest is read and dropped); a relay always kills.
    let onLimit: OutputLimitAction
    /// Where a relayed stream goes (a duplicate Corral owns); nil for a capture.
    let sink: Int32?
    private(set) var data: [UInt8] = []
    /// Every byte the program wrote, kept or not.
    private(set) var total: UInt64 = 0
    private(set) var atEnd = false
    /// The first error writing to the sink (errno), after which the rest is dropped.
    private(set) var sinkError: Int32?

    init(stream: String, descriptor: Int32, max: UInt64, onLimit: OutputLimitAction = .kill, sink: Int32? = nil) {
        self.stream = stream
        self.descriptor = descriptor
        self.max = max
        self.onLimit = sink == nil ? onLimit : .kill
        self.sink = sink
    }

    deinit {
        close(descriptor)
        if let sink { close(sink) }
    }

    var overflowed: Bool { total > max }
    /// Past its cap, and the cap ends the run (`output-limit`).
    var overLimit: Bool { overflowed && onLimit == .kill }
    var isRelay: Bool { sink != nil }

    /// Reads what is there without blocking; keeps (or relays) the first `max` bytes.
    func drain() {
        guard !atEnd else { return }
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count > 0 {
                let room = max > total ? Int(min(UInt64(count), max - total)) : 0
                total += UInt64(count)
                if room > 0 {
                    if let sink { relay(buffer, room, to: sink) } else { data.append(contentsOf: buffer[0..<room]) }
                }
                continue
            }
            if count == 0 { atEnd = true }
            if count < 0 && errno == EINTR { continue }
            return
        }
    }

    private func relay(_ buffer: [UInt8], _ count: Int, to sink: Int32) {
        guard sinkError == nil else { return }
        var written = 0
        while written < count {
            let result = buffer.withUnsafeBytes { write(sink, $0.baseAddress! + written, count - written) }
            if result < 0 && errno == EINTR { continue }
            if result <= 0 {
                sinkError = result < 0 ? errno : EIO
                return
            }
            written += result
        }
    }

    var output: CapturedOutput { CapturedOutput(data, truncated: overflowed) }
}
