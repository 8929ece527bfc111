/// testlib's convention for a checker's or an interactor's exit: 0 accepted, 1 wrong answer,
/// 2 presentation error, 3 a checker failure; anything else (another code, a signal, a
/// limit) is a checker error too. Its stderr, cut at ``maxComment`` bytes, is the comment.
enum TestlibVerdict {
    static let maxComment = 4096

    static func decide(_ report: RunReport) -> CheckResult {
        let comment = Self.comment(report)
        switch (report.status, report.exitCode) {
        case (.ok, _): return CheckResult(.accepted, comment)
        case (.nonzeroExit, 1): return CheckResult(.wrongAnswer, comment)
        case (.nonzeroExit, 2): return CheckResult(.presentationError, comment)
        case (.nonzeroExit, 3): return CheckResult(.checkerError, comment.isEmpty ? "the checker failed (exit 3)" : comment)
        default:
            let why = "the checker ended \(report.status.rawValue): \(report.message)"
            return CheckResult(.checkerError, comment.isEmpty ? why : "\(why); \(comment)")
        }
    }

    /// The run's captured stderr, at most ``maxComment`` bytes of it, as text: control
    /// characters but tab and newline become `?` and invalid UTF-8 U+FFFD, cut again to
    /// ``maxComment`` bytes. The comment is text in every test's report: 4 KiB of NULs were
    /// 24 KiB of JSON there (`\u0000` each), next to the stderr's own base64.
    static func comment(_ report: RunReport) -> String {
        guard let stderr = report.stderr else { return "" }
        let bytes = stderr.data.prefix(maxComment).map { byte -> UInt8 in
            byte < 0x20 && byte != 0x09 && byte != 0x0A ? UInt8(ascii: "?") : byte
        }
        var text = String(decoding: bytes, as: UTF8.self)
        while text.utf8.count > maxComment { text.removeLast() }
        while text.hasSuffix("\n") { text.removeLast() }
        return text
    }
}

extension CustomCheckerSpec {
    /// The checker's job: its process in a directory of its own with its files, and the test's
    /// `input`, `output` and `answer` (read-only) after its arguments.
    func job() -> (JobSpec, readOnly: [SpecPath]) {
        var process = self.process
        process.name = "checker"
        process.stdin = .null
        process.args += ["input", "output", "answer"]
        let testFiles = [TestFiles.input, TestFiles.output, TestFiles.answer]
        let files = self.files.map { file -> FileSpec in
            var file = file
            file.process = nil
            return file
        } + testFiles.map { TestFiles.file($0, for: nil) }
        return (JobSpec(processes: [process], files: files), testFiles)
    }
}
