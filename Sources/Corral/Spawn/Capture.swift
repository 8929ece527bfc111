#if canImport(Glibc)
import Glibc
#endif

/// One captured stream: the read end of a pipe, drained by the reaper as it fills.
final class Capture: @unchecked Sendable {
    let stream: String
    let descriptor: Int32
    let max: UInt64
    private(set) var data: [UInt8] = []
    /// Every byte the program wrote, kept or not.
    private(set) var total: UInt64 = 0
    private(set) var atEnd = false

    init(stream: String, descriptor: Int32, max: UInt64) {
        self.stream = stream
        self.descriptor = descriptor
        self.max = max
    }

    deinit { close(descriptor) }

    var overflowed: Bool { total > max }

    /// Reads what is there without blocking; keeps the first `max` bytes.
    func drain() {
        guard !atEnd else { return }
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count > 0 {
                total += UInt64(count)
                let room = max > UInt64(data.count) ? Int(min(UInt64(count), max - UInt64(data.count))) : 0
                if room > 0 { data.append(contentsOf: buffer[0..<room]) }
                continue
            }
            if count == 0 { atEnd = true }
            if count < 0 && errno == EINTR { continue }
            return
        }
    }

    var output: CapturedOutput { CapturedOutput(data, truncated: overflowed) }
}
