import Foundation
import Corral

/// Checks that a run left nothing behind.
public enum Leftovers {
    /// Whether a process with this pid exists (zombies included).
    public static func isAlive(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0 || errno == EPERM
    }

    /// Pids of every process in session `session` (a run's session is its main pid).
    public static func processes(inSession session: Int32) -> [Int32] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap(Int32.init).filter { pid in
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
            return fields.count > 3 && Int32(fields[3]) == session
        }
    }

    /// Everything still alive of a run: its session and group, the pids in its events, and
    /// `extra` pids the fixture wrote down.
    public static func survivors(of report: RunReport, extra: [Int32] = []) -> [Int32] {
        var suspects = Set(extra)
        suspects.formUnion(report.events.map(\.pid))
        var alive = suspects.filter(isAlive)
        if let pid = report.pid {
            alive.formUnion(processes(inSession: pid))
            if kill(-pid, 0) == 0 { alive.insert(-pid) }
        }
        return alive.sorted()
    }

    /// Pids written one per line to a file by a fixture.
    public static func pids(inFile path: String) -> [Int32] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(whereSeparator: \.isNewline).compactMap { Int32($0.trimmingCharacters(in: .whitespaces)) }
    }
}

/// A temporary directory removed when the value is deinitialized... by the caller, with `remove()`.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init() {
        let template = NSTemporaryDirectory() + "corral-test-XXXXXX"
        var bytes = Array(template.utf8CString)
        let made = bytes.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        path = made.map { String(cString: $0) } ?? template
        // Programs run as nobody when the tests run as root: fixtures write their pid files here.
        chmod(path, 0o777)
    }

    public func file(_ name: String) -> String { "\(path)/\(name)" }

    public func remove() {
        try? FileManager.default.removeItem(atPath: path)
        // A server's state directory, when one was given beside this one (``ServeProcess``).
        try? FileManager.default.removeItem(atPath: path + ".state")
    }
}

extension Leftovers {
    /// Alive and not a zombie (a zombie is dead, only not yet reaped by its parent).
    public static func isRunning(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let state = stat[stat.index(close, offsetBy: 2)]
        guard state != "Z" && state != "X" else { return false }
        // Killed but not yet a zombie (a busy host shows this for a moment): exiting
        // (PF_EXITING in the flags, the 9th field) or SIGKILL pending. It runs no code again.
        let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
        if fields.count > 6, let flags = UInt(fields[6]), flags & 0x4 != 0 { return false }
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        for line in status.split(separator: "\n") where line.hasPrefix("SigPnd:") || line.hasPrefix("ShdPnd:") {
            if let pending = UInt64(line.split(separator: "\t").last ?? "", radix: 16), pending & (1 << (SIGKILL - 1)) != 0 { return false }
        }
        return true
    }
}

extension Leftovers {
    /// Running (not zombie) processes whose command line is `sleep MARKER` (or `/bin/sleep`).
    public static func sleepers(_ marker: String) -> Int {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard let line = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8) else { return false }
            return (line == "sleep\u{0}\(marker)\u{0}" || line == "/bin/sleep\u{0}\(marker)\u{0}") && isRunning(pid)
        }.count
    }
}
