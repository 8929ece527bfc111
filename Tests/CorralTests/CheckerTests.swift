import Corral
import Foundation
import Testing

/// The built-in checkers against hand-made outputs and answers, each written to a file and
/// compared through descriptors as a test's would be, and with the answer from memory.
@Suite("Checkers")
struct CheckerTests {
    /// The files themselves (uniquely named, removed after each check) lie in the temporary
    /// directory: a directory of their own would outlive the tests.
    static let directory = String(NSTemporaryDirectory().dropLast(NSTemporaryDirectory().hasSuffix("/") ? 1 : 0))

    func check(_ checker: BuiltinChecker, output: [UInt8], answer: [UInt8]) throws -> CheckResult {
        let name = UUID().uuidString
        let outputPath = "\(Self.directory)/\(name).out", answerPath = "\(Self.directory)/\(name).ans"
        try Data(output).write(to: URL(fileURLWithPath: outputPath))
        try Data(answer).write(to: URL(fileURLWithPath: answerPath))
        defer {
            try? FileManager.default.removeItem(atPath: outputPath)
            try? FileManager.default.removeItem(atPath: answerPath)
        }
        let out = open(outputPath, O_RDONLY), ans = open(answerPath, O_RDONLY)
        defer { close(out); close(ans) }
        let result = checker.check(output: out, answer: ans)
        // A test's inline answer is compared from memory: every case gives the same result so.
        let fromMemory = checker.check(output: out, answer: answer)
        #expect(fromMemory == result, "answer from memory: \(fromMemory), from a file: \(result)")
        return result
    }

    func verdict(_ checker: BuiltinChecker, _ output: String, _ answer: String) throws -> CheckResult.Decision {
        try check(checker, output: Array(output.utf8), answer: Array(answer.utf8)).verdict
    }

    @Test("exact: equal bytes only; a layout-only difference is a presentation error")
    func exact() throws {
        #expect(try verdict(.exact, "1 2\n", "1 2\n") == .accepted)
        #expect(try verdict(.exact, "", "") == .accepted)
        #expect(try verdict(.exact, "1 3\n", "1 2\n") == .wrongAnswer)
        #expect(try verdict(.exact, "1 2", "1 2\n") == .presentationError)
        #expect(try verdict(.exact, "1  2\n", "1 2\n") == .presentationError)
        #expect(try verdict(.exact, "", "1\n") == .wrongAnswer)
        #expect(try verdict(.exact, "1\n2\n", "1\n") == .wrongAnswer)
    }

    @Test("lines: trailing whitespace per line, CRLF and trailing empty lines are ignored")
    func lines() throws {
        #expect(try verdict(.lines, "a b  \nc\t\n", "a b\nc\n") == .accepted)
        #expect(try verdict(.lines, "a b\r\nc\r\n", "a b\nc\n") == .accepted)
        #expect(try verdict(.lines, "a\n\n\n  \n", "a") == .accepted)
        #expect(try verdict(.lines, "a", "a\n\n") == .accepted)
        #expect(try verdict(.lines, "", "") == .accepted)
        #expect(try verdict(.lines, "\n\n", "") == .accepted)
        #expect(try verdict(.lines, "", "0\n") == .wrongAnswer)
        #expect(try verdict(.lines, "a\n\nb\n", "a\nb\n") == .presentationError) // an empty line in the middle counts
        #expect(try verdict(.lines, "a  b\n", "a b\n") == .presentationError) // so does whitespace inside a line
        #expect(try verdict(.lines, " a\n", "a\n") == .presentationError) // and at a line's start
        #expect(try verdict(.lines, "a b\n", "a c\n") == .wrongAnswer)
        #expect(try verdict(.lines, "a \tx\n", "a  x\n") == .presentationError)
        #expect(try verdict(.lines, "ab\n", "a\n") == .wrongAnswer)
        #expect(try verdict(.lines, "a\n", "ab\n") == .wrongAnswer)
    }

    @Test("tokens: whitespace-insensitive, tokens compared exactly")
    func tokens() throws {
        #expect(try verdict(.tokens, "1   2\n\n3", "1 2 3\n") == .accepted)
        #expect(try verdict(.tokens, "\r\n 1\t2\r\n", "1 2") == .accepted)
        #expect(try verdict(.tokens, "", "  \n") == .accepted)
        #expect(try verdict(.tokens, "12", "1 2") == .wrongAnswer)
        #expect(try verdict(.tokens, "1 2", "12") == .wrongAnswer)
        #expect(try verdict(.tokens, "1 2 3", "1 2") == .wrongAnswer)
        #expect(try verdict(.tokens, "1 2", "1 2 3") == .wrongAnswer)
        #expect(try verdict(.tokens, "1.0", "1") == .wrongAnswer)
        #expect(try verdict(.tokens, "", "x") == .wrongAnswer)
    }

    @Test("float: numbers within the absolute or relative tolerance, other tokens exactly")
    func float() throws {
        let loose = BuiltinChecker.float(absolute: 1e-6, relative: 1e-6)
        #expect(try verdict(loose, "0.3333333\n", "0.33333333333\n") == .accepted)
        #expect(try verdict(loose, "0.334", "0.333333") == .wrongAnswer)
        #expect(try verdict(loose, "1000000.5", "1000000") == .accepted) // relative: 5e-7
        #expect(try verdict(loose, "1000002", "1000000") == .wrongAnswer)
        #expect(try verdict(loose, "1e-9 -0", "0 0.0000001") == .accepted)
        #expect(try verdict(loose, "YES 1.0000001", "YES 1") == .accepted)
        #expect(try verdict(loose, "yes 1", "YES 1") == .wrongAnswer)
        #expect(try verdict(loose, "x 1.0000001 y", "x 1.0 y") == .accepted)
        #expect(try verdict(loose, "nan", "nan") == .accepted)
        #expect(try verdict(loose, "nan", "0") == .wrongAnswer)
        #expect(try verdict(loose, "1.5 2.5", "1.5") == .wrongAnswer)
        #expect(try verdict(loose, "-", "-") == .accepted)
        #expect(try verdict(loose, "1-2", "1-3") == .wrongAnswer)
        #expect(try verdict(.float(absolute: 0.5, relative: 0), "3", "3.4") == .accepted)
        #expect(try verdict(.float(absolute: 0.5, relative: 0), "3", "3.6") == .wrongAnswer)
        let long = String(repeating: "7", count: 5000)
        #expect(try verdict(loose, long, long) == .accepted)
        #expect(try verdict(loose, long + "1", long + "2") == .wrongAnswer)
    }

    @Test("a difference just past a buffer's end is found (64 KiB reads)")
    func bufferBoundaries() throws {
        for size in [65535, 65536, 65537, 131072] {
            var output = [UInt8](repeating: 0x61, count: size)
            let answer = output
            #expect(try check(.exact, output: output, answer: answer).verdict == .accepted)
            output[size - 1] = 0x62
            #expect(try check(.exact, output: output, answer: answer).verdict == .wrongAnswer, "size \(size)")
            #expect(try check(.tokens, output: output, answer: answer).verdict == .wrongAnswer, "size \(size)")
            #expect(try check(.lines, output: output + [0x20, 0x0A], answer: output).verdict == .accepted, "size \(size)")
        }
    }

    /// 100 MB of lines written to files, compared by each checker: equal, then with the last
    /// number changed. Prints the throughput (no timing is asserted: the bench mode is
    /// `corral-bench --checkers`).
    @Test("a 100 MB output is streamed through every checker")
    func hundredMegabytes() throws {
        var line = [UInt8]()
        for number in 0..<100 { line += Array("\(number * 7919) \(Double(number) / 3)\n".utf8) }
        var block = [UInt8]()
        while block.count < 1 << 20 { block += line }
        let name = "corral-checker-\(UUID().uuidString)"
        let outputPath = "\(Self.directory)/\(name).out", answerPath = "\(Self.directory)/\(name).ans"
        FileManager.default.createFile(atPath: outputPath, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        for _ in 0..<100 { handle.write(Data(block)) }
        try handle.close()
        defer {
            try? FileManager.default.removeItem(atPath: outputPath)
            try? FileManager.default.removeItem(atPath: answerPath)
        }
        try FileManager.default.copyItem(atPath: outputPath, toPath: answerPath)
        let bytes = Double(fileSize(outputPath))
        #expect(bytes >= 100e6)
        for checker in [BuiltinChecker.exact, .lines, .tokens, .float(absolute: 1e-6, relative: 1e-6)] {
            let out = open(outputPath, O_RDONLY), ans = open(answerPath, O_RDONLY)
            let started = ContinuousClock.now
            let result = checker.check(output: out, answer: ans)
            let elapsed = ContinuousClock.now - started
            close(out)
            close(ans)
            #expect(result.verdict == .accepted, "\(checker.name): \(result.comment)")
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            print("checker \(checker.name): \(Int(bytes / seconds / 1e6)) MB/s over \(Int(bytes / 1e6)) MB")
        }
        // The last digit changed: found at the very end.
        let out = open(outputPath, O_RDWR)
        let size = off_t(bytes)
        var last: UInt8 = 0
        _ = pread(out, &last, 1, size - 2)
        var changed: UInt8 = last == 0x31 ? 0x32 : 0x31
        _ = pwrite(out, &changed, 1, size - 2)
        let ans = open(answerPath, O_RDONLY)
        defer { close(out); close(ans) }
        #expect(BuiltinChecker.lines.check(output: out, answer: ans).verdict == .wrongAnswer)
        #expect(BuiltinChecker.tokens.check(output: out, answer: ans).verdict == .wrongAnswer)
    }

    func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? NSNumber)?.intValue ?? 0
    }
}
