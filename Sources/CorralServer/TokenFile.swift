#if canImport(Glibc)
import Glibc
#endif

/// `corral serve --token-file FILE`: the token read once at start from a file only its owner
/// can read, so that it never shows in `/proc/PID/cmdline` (as `--token` does) nor in the
/// environment.
public enum TokenFile {
    /// The most a token file may hold.
    static let maximumSize = 4096

    /// The file's content less one trailing newline. Refuses a file that is not a regular
    /// file, that its group or others may read or write (the token would not be secret),
    /// that is larger than 4 KiB, or whose token is empty.
    public static func read(_ path: String, flag: String = "--token-file") throws(ServerError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
        guard fd >= 0 else { throw ServerError("\(flag) \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw ServerError("\(flag) \(path): \(String(cString: strerror(errno)))") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw ServerError("\(flag) \(path): not a regular file") }
        guard info.st_mode & 0o077 == 0 else {
            throw ServerError("\(flag) \(path): its group or others may read or write it (mode \(String(info.st_mode & 0o777, radix: 8))); chmod 600 it")
        }
        guard info.st_size <= maximumSize else { throw ServerError("\(flag) \(path): larger than \(maximumSize) bytes") }
        var bytes = [UInt8](repeating: 0, count: maximumSize + 1)
        var count = 0
        while count < bytes.count {
            let got = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + count, $0.count - count) }
            if got < 0 && errno == EINTR { continue }
            guard got >= 0 else { throw ServerError("\(flag) \(path): \(String(cString: strerror(errno)))") }
            if got == 0 { break }
            count += got
        }
        guard count <= maximumSize else { throw ServerError("\(flag) \(path): larger than \(maximumSize) bytes") }
        var token = Array(bytes[..<count])
        if token.last == UInt8(ascii: "\n") {
            token.removeLast()
            if token.last == UInt8(ascii: "\r") { token.removeLast() }
        }
        guard !token.isEmpty else { throw ServerError("\(flag) \(path): \(flag == "--token-file" ? "the token" : "it") is empty") }
        guard let text = String(validating: token, as: UTF8.self) else { throw ServerError("\(flag) \(path): not UTF-8 text") }
        return text
    }
}
