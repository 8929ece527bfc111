import SystemPackage

/// A file the user named on the command line (`--spec`, `--seccomp-policy`), read whole
/// with the user's own rights; "-" is standard input.
enum HostFile {
    static func read(_ path: String) throws(Errno) -> [UInt8] {
        if path == "-" { return try readAll(.standardInput) }
        let file: FileDescriptor
        do { file = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec]) } catch {
            throw error as? Errno ?? .ioError
        }
        defer { try? file.close() }
        return try readAll(file)
    }

    private static func readAll(_ file: FileDescriptor) throws(Errno) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count: Int
            do { count = try chunk.withUnsafeMutableBytes { try file.read(into: $0) } } catch {
                throw error as? Errno ?? .ioError
            }
            if count == 0 { return bytes }
            bytes.append(contentsOf: chunk[..<count])
        }
    }
}
