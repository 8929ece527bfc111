import Corral
import CorralTestSupport
import Foundation
import Testing

/// An isolated run's init is a copy of Corral: it held every descriptor Corral had (other
/// processes' pipe ends, a server's sockets), so isolated pipes never saw EOF. And a
/// terminal as Corral's stdout was handed to the program read-write.
extension SecurityTests {
@Suite("Descriptors")
struct DescriptorTests {
    @Test("an isolated echo | cat ends at once: no init keeps the other's pipe end", .enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func isolatedPipeSeesEOF() async throws {
        for _ in 0..<8 {
            let report = try await runSpec("""
                {"processes": [
                  {"name": "echo", "args": ["/bin/echo", "hi"], "isolate": true, "stdout": {"pipe": "p"}, "limits": {"wallTime": 10}},
                  {"name": "cat", "args": ["/bin/cat"], "isolate": true, "stdin": {"pipe": "p"}, "limits": {"wallTime": 10}}],
                 "pipes": ["p"]}
                """)
            #expect(report.status == .ok, "\(report.processes.map { "\($0.name): \($0.report.message)" })")
            #expect(report.process("cat")?.stdout?.text == "hi\n")
            #expect(report.wallTime < 5, "cat waited \(report.wallTime) s for EOF")
        }
    }

    /// The inits of this process's isolated runs: its children in another PID namespace.
    static func initsOfThisProcess() -> [Int32] {
        let ours = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/pid")) ?? ""
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
                  status.contains("\nPPid:\t\(getpid())\n"),
                  let namespace = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/ns/pid") else { return false }
            return namespace != ours
        }
    }

    @Test("an isolated run's init holds no descriptor of its host: not a listening socket, not another run's pipe",
          .enabled(if: isRoot, Comment(rawValue: needsRoot)))
    func initHoldsNothingOfTheHost() async throws {
        let listener = try LoopbackListener()
        let socket = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(listener.fileDescriptor)")
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        defer { close(ends[0]); close(ends[1]) }
        let hostPipe = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(ends[1])")
        let run = Task {
            try await Runner().run(Job(arguments: ["/bin/sleep", "2"], limits: Limits(wallTime: .seconds(10)), isolation: Isolation()))
        }
        var inits: [Int32] = []
        for _ in 0..<200 where inits.isEmpty {
            inits = Self.initsOfThisProcess()
            if inits.isEmpty { try await Task.sleep(for: .milliseconds(10)) }
        }
        try await Task.sleep(for: .milliseconds(300)) // past the setup
        #expect(!inits.isEmpty, "no isolated init was found")
        for pid in inits {
            let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []
            let targets = descriptors.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)") }
            #expect(!targets.contains(socket), "the init holds the host's listening socket: \(targets)")
            #expect(!targets.contains(hostPipe), "the init holds a pipe of the host: \(targets)")
            #expect(descriptors.count <= 4, "the init holds \(descriptors.count) descriptors: \(targets)")
        }
        let report = try await run.value
        #expect(report.status == .ok)
        withExtendedLifetime(listener) {}
    }

    /// With a terminal as Corral's stdout the program read the user's keystrokes through it.
    /// Python's pty module plays the terminal: the program's stdout is a pseudo-terminal,
    /// the "user" types a line into it while the program tries to read one from its stdout.
    @Test("a terminal is never handed to the program: it writes through a pipe Corral copies to the terminal")
    func terminalIsNotHandedOver() throws {
        let program = """
        [ -t 1 ] && echo "stdout is a terminal" >&2
        if read -t 2 line <&1; then echo "read from the terminal: $line" >&2; fi
        echo hello
        """
        let harness = """
        import os, pty, subprocess, sys, time
        master, slave = pty.openpty()
        child = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=slave, stderr=subprocess.PIPE)
        os.close(slave)
        time.sleep(0.3)
        os.write(master, b"secret keystrokes\\n")
        _, err = child.communicate(timeout=60)
        seen = b""
        os.set_blocking(master, False)
        try:
            while True:
                chunk = os.read(master, 4096)
                if not chunk: break
                seen += chunk
        except (BlockingIOError, OSError):
            pass
        print("status", child.returncode)
        print("terminal", seen.decode(errors="replace").replace("\\r", "").replace("\\n", "|"))
        print("stderr", err.decode(errors="replace").replace("\\n", "|"))
        """
        let result = try Spawn.run("/usr/bin/env", ["python3", "-c", harness, corralBinary, "run", "--quiet", "--", "/bin/sh", "-c", program])
        let lines = result.standardOutput.split(separator: "\n").map(String.init)
        #expect(lines.first == "status 0", "\(result.standardOutput) \(result.standardError)")
        let stderr = lines.first { $0.hasPrefix("stderr") } ?? ""
        #expect(!stderr.contains("read from the terminal"), "\(stderr)")
        #expect(!stderr.contains("stdout is a terminal"), "\(stderr)")
        #expect(lines.first { $0.hasPrefix("terminal") }?.contains("hello") == true, "the program's output did not reach the terminal: \(lines)")
    }
}
}
