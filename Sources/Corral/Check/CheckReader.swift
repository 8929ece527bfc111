#if canImport(Glibc)
import Glibc
#endif

/// Reads a file for a checker through a fixed buffer (64 KiB), from its start, with `pread`
/// (the descriptor's own offset is left alone, so the same file can be read again): a
/// checker's memory stays the same for an output of a byte or of a gigabyte.
final class CheckReader {
    static let capacity = 1 << 16
    private let fd: Int32
    private var fileOffset: off_t = 0
    let buffer: UnsafeMutablePointer<UInt8>
    /// The unread bytes are `buffer[position..<end]`.
    var position = 0
    var end = 0
    private(set) var atEOF = false
    /// Bytes consumed before `buffer[0]`: with `position`, where the reader is in the file.
    private(set) var base: Int64 = 0
    /// The first read error (errno), if any: the check then fails as a checker error.
    private(set) var readError: Int32?

    /// The content itself instead of a file (a test's answer given inline): read from it
    /// through the same buffer.
    private let bytes: [UInt8]?

    init(fd: Int32) {
        self.fd = fd
        bytes = nil
        buffer = .allocate(capacity: Self.capacity)
    }

    init(bytes: [UInt8]) {
        fd = -1
        self.bytes = bytes
        buffer = .allocate(capacity: Self.capacity)
    }

    deinit { buffer.deallocate() }

    /// Where the next byte is, from the file's start.
    var offset: Int64 { base + Int64(position) }

    /// Makes at least one unread byte available unless the file has ended; false at the end.
    @inline(__always)
    func fill() -> Bool {
        if position < end { return true }
        return refill()
    }

    /// Bytes already read that a refill keeps at the buffer's start, so that a comparison
    /// can step back to the start of a token of at most this length (``rewind(_:)``).
    static let history = 512

    private func refill() -> Bool {
        guard !atEOF else { return false }
        let keep = min(end, Self.history)
        if keep > 0 { memmove(buffer, buffer + end - keep, keep) }
        base += Int64(end - keep)
        position = keep
        end = keep
        if let bytes {
            let count = min(Self.capacity - keep, bytes.count - Int(fileOffset))
            guard count > 0 else {
                atEOF = true
                return false
            }
            bytes.withUnsafeBufferPointer { (buffer + keep).update(from: $0.baseAddress! + Int(fileOffset), count: count) }
            fileOffset += off_t(count)
            end = keep + count
            return true
        }
        while true {
            let count = pread(fd, buffer + keep, Self.capacity - keep, fileOffset)
            if count < 0 && errno == EINTR { continue }
            if count < 0 { readError = errno }
            guard count > 0 else {
                atEOF = true
                return false
            }
            fileOffset += off_t(count)
            end = keep + count
            return true
        }
    }

    /// How many bytes before the current one are not whitespace (the part of the current
    /// token already taken), counting at most `limit`.
    func tokenBytesBehind(limit: Int) -> Int {
        var count = 0
        while count < limit && position - count > 0 && !isSpace(buffer[position - count - 1]) { count += 1 }
        return count
    }

    /// Steps back `count` bytes (at most ``history`` behind a refill).
    func rewind(_ count: Int) { position -= count }

    /// The next byte without taking it, or -1 at the end.
    @inline(__always)
    func peek() -> Int {
        fill() ? Int(buffer[position]) : -1
    }

    @inline(__always)
    func advance() { position += 1 }

    /// Takes bytes while `predicate` holds; returns how many.
    @discardableResult
    func skip(while predicate: (UInt8) -> Bool) -> Int64 {
        var skipped: Int64 = 0
        while fill() {
            let start = position
            while position < end && predicate(buffer[position]) { position += 1 }
            skipped += Int64(position - start)
            if position < end { break }
        }
        return skipped
    }

    /// Takes the longest run of bytes both readers have in common from where they are;
    /// stops where they differ or where either ends. Returns the last byte taken, or -1
    /// when none was.
    @discardableResult
    static func skipCommon(_ a: CheckReader, _ b: CheckReader) -> Int {
        var last = -1
        while a.fill() && b.fill() {
            let length = min(a.end - a.position, b.end - b.position)
            let pa = a.buffer + a.position
            let pb = b.buffer + b.position
            var same = 0
            // Whole blocks by memcmp, then the differing block byte by byte.
            while same + 512 <= length && memcmp(pa + same, pb + same, 512) == 0 { same += 512 }
            while same < length && pa[same] == pb[same] { same += 1 }
            a.position += same
            b.position += same
            if same > 0 { last = Int(pa[same - 1]) }
            if same < length { return last }
        }
        return last
    }
}

/// Whitespace within a line: space, tab, CR, vertical tab, form feed.
@inline(__always)
func isLineSpace(_ byte: UInt8) -> Bool {
    byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0B || byte == 0x0C
}

/// Whitespace between tokens: the above and LF.
@inline(__always)
func isSpace(_ byte: UInt8) -> Bool {
    byte == 0x0A || isLineSpace(byte)
}
