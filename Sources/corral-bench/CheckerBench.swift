import Corral
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The built-in checkers' throughput on a large file.
enum CheckerBench {
    /// MB/s of each built-in checker comparing a file of `megabytes` with a copy of itself.
    static func checkers(megabytes: Int) -> [(String, Double)] {
        let directory = NSTemporaryDirectory() + "corral-bench-checkers-\(getpid())"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var line = [UInt8]()
        for number in 0..<100 { line += Array("\(number * 7919) \(Double(number) / 7) word\(number)\n".utf8) }
        var block = [UInt8]()
        while block.count < 1 << 20 { block += line }
        let output = "\(directory)/output", answer = "\(directory)/answer"
        FileManager.default.createFile(atPath: output, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: output) else { return [] }
        for _ in 0..<megabytes { handle.write(Data(block)) }
        try? handle.close()
        try? FileManager.default.copyItem(atPath: output, toPath: answer)
        let bytes = Double(block.count * megabytes)
        var results: [(String, Double)] = []
        for checker in [BuiltinChecker.exact, .lines, .tokens, .float(absolute: 1e-6, relative: 1e-6)] {
            var best = 0.0
            for _ in 0..<3 {
                let a = open(output, O_RDONLY), b = open(answer, O_RDONLY)
                let started = monotonicNanos()
                let result = checker.check(output: a, answer: b)
                let seconds = Double(monotonicNanos() - started) / 1e9
                close(a)
                close(b)
                guard result.verdict == .accepted else { return [] }
                best = max(best, bytes / seconds / 1e6)
            }
            results.append((checker.name, best))
        }
        return results
    }
}
