import Synchronization

/// The memory request bodies in flight may take together (`--max-bodies-in-flight`). A
/// request reserves before it reads: its `Content-Length` first, then more as its body
/// streams in past that, then what parsing it will cost (``parseCost(of:)``); it keeps the
/// reservation until its answer is written (the parsed job lives that long). What cannot be
/// reserved is refused, so the server never grows for bodies past the budget.
final class BodyBudget: Sendable {
    let capacity: Int
    private let used = Mutex(0)
    private let onChange: @Sendable (Int) -> Void

    init(capacity: Int, onChange: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.capacity = capacity
        self.onChange = onChange
    }

    /// Bytes reserved now.
    var inUse: Int { used.withLock { $0 } }

    /// Takes `bytes` if they fit; false (nothing taken) if not.
    func reserve(_ bytes: Int) -> Bool {
        precondition(bytes >= 0)
        return used.withLock { used in
            guard bytes <= capacity - used else { return false }
            used += bytes
            onChange(used)
            return true
        }
    }

    func release(_ bytes: Int) {
        used.withLock { used in
            used -= bytes
            precondition(used >= 0, "body budget released more than reserved")
            onChange(used)
        }
    }

    /// What one request holds of a budget; everything goes back with ``releaseAll()``.
    final class Reservation: @unchecked Sendable { // used by one request's task only
        private let budget: BodyBudget
        private(set) var held = 0

        init(_ budget: BodyBudget) {
            self.budget = budget
        }

        /// Raises what is held to `total` bytes (nothing when it already holds that much).
        func grow(to total: Int) -> Bool {
            guard total > held else { return true }
            guard budget.reserve(total - held) else { return false }
            held = total
            return true
        }

        func releaseAll() {
            budget.release(held)
            held = 0
        }
    }

    /// An upper bound of the memory parsing `body` into a job takes, besides the body itself:
    /// a copy of its bytes, and the tree of values, which costs per value far more than its
    /// text (`[0,0,...]` is 2 bytes a value in JSON and about 64 bytes parsed).
    static func parseCost(of body: UnsafeBufferPointer<UInt8>) -> Int {
        var values = 0
        var inString = false
        var escaped = false
        for byte in body {
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true; values += 1
            case UInt8(ascii: ","), UInt8(ascii: "["), UInt8(ascii: "{"), UInt8(ascii: ":"): values += 1
            default: break
            }
        }
        return body.count * 2 + values * bytesPerValue
    }

    /// The cost of one parsed value, measured (see the server tests), with a margin.
    static let bytesPerValue = 128
}
