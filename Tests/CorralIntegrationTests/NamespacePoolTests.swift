import Corral
import CorralTestSupport
import Foundation
import Testing

private let root = geteuid() == 0
private let needsRoot = "the namespace pool serves isolated runs started as root (with corral-init); not root here"

/// The network namespace a descriptor or /proc link names, as its inode number.
private func inode(ofLink text: Substring) -> UInt? {
    guard let open = text.firstIndex(of: "["), let close = text.firstIndex(of: "]") else { return nil }
    return UInt(text[text.index(after: open)..<close])
}

/// Network namespaces this process holds by descriptor (`net:[N]` links in /proc/self/fd).
private func heldNetworkNamespaces() -> Int {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    return entries.filter { ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)")) ?? "").hasPrefix("net:[") }.count
}

/// Threads of this process named as the pool's.
private func poolThreads() -> Int {
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
    return tasks.filter { (try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8)) == "corral-netns\n" }.count
}

/// Waits (off the cooperative pool's hot path: short sleeps) until the pool holds `count`.
private func waitForPool(_ count: Int) async throws -> Bool {
    for _ in 0..<400 {
        if Runner.preparedNetworkNamespaces.count >= count { return true }
        try await Task.sleep(for: .milliseconds(5))
    }
    return false
}

extension IntegrationTests {
@Suite("Prepared network namespaces", .enabled(if: root, Comment(rawValue: needsRoot)))
struct NamespacePoolTests {
    func isolated(_ script: String, network: Isolation.Network = .none) async throws -> RunReport {
        let report = try await run(Job(arguments: ["/bin/sh", "-c", script], standardOutput: .capture(max: 1 << 20),
                                       standardError: .capture(max: 1 << 20), limits: Limits(wallTime: .seconds(20)),
                                       isolation: Isolation(network: network)))
        #expect(report.isolated)
        return report
    }

    @Test("a run enters a prepared namespace, and the program holds no descriptor of the pool")
    func usedAndUnseen() async throws {
        _ = try await isolated("true")
        _ = try await isolated("true") // the second isolated run of a process starts the pool
        #expect(try await waitForPool(Runner.preparedNetworkNamespaceCapacity), "the pool did not fill")
        let prepared = Set(Runner.preparedNetworkNamespaces)
        let report = try await isolated("readlink /proc/self/ns/net; ls -l /proc/self/fd/ | grep -c 'net:\\[' ; ls /proc/self/fd | wc -l")
        #expect(report.status == .ok, "\(report.message) \(report.stderr?.text ?? "")")
        let lines = (report.stdout?.text ?? "").split(separator: "\n")
        #expect(lines.count == 3, "\(lines)")
        let inside = lines.first.flatMap(inode(ofLink:))
        #expect(inside != nil && prepared.contains(inside!), "the run's namespace \(String(describing: inside)) is not one the pool prepared: \(prepared)")
        #expect(!Runner.preparedNetworkNamespaces.contains(inside ?? 0), "a used namespace is still offered")
        #expect(lines.dropFirst().first == "0", "the program sees a network namespace descriptor")
        // At most 0, 1, 2 and ls's own directory descriptor.
        #expect((Int(lines.last ?? "") ?? 99) <= 4, "the program holds more descriptors than its own: \(lines)")
    }

    @Test("what run A leaves in its sandbox (sockets, addresses, links, IPC, hostname, /tmp, a daemon) is not in the next runs")
    func nothingCarriesOver() async throws {
        let attack = """
        ip link add corralx0 type dummy 2>/dev/null && echo link-added
        ip addr add 10.77.0.1/8 dev lo 2>/dev/null && echo address-added
        hostname attacker 2>/dev/null && echo hostname-set
        ipcmk -M 4096 >/dev/null 2>&1 && echo shm; ipcmk -Q >/dev/null 2>&1 && echo queue; ipcmk -S 1 >/dev/null 2>&1 && echo sem
        echo secret > /tmp/left-by-a && echo tmp-written
        python3 -c '
        import os, socket, time
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind("\\0corral-pool-probe"); s.listen(1)
        t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind(("127.0.0.1", 47777)); t.listen(1)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 47778))
        # A connection closed from this side first: its TIME_WAIT outlives every process.
        c = socket.create_connection(("127.0.0.1", 47777)); d, _ = t.accept(); c.close(); time.sleep(0.05); d.close()
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                time.sleep(30)
            os._exit(0)
        print("listening", flush=True)
        '
        """
        let probe = """
        ip -o link | awk '{print $2}' | tr -d ':' | tr '\\n' ' '; echo
        ip -o addr | grep -c 10.77 ; hostname; ipcs -m -q -s | grep -c '^0x'
        ls -A /tmp | wc -l; grep -c corral-pool-probe /proc/net/unix
        tail -n +2 /proc/net/tcp | wc -l; tail -n +2 /proc/net/udp | wc -l; ls /proc | grep -c '^[0-9]'
        """
        let expected = ["lo ", "0", "corral", "0", "0", "0", "0", "0"]
        _ = try await isolated("true")
        _ = try await isolated("true") // the pool runs from the second isolated run on
        for round in 0..<12 {
            #expect(try await waitForPool(1), "the pool is empty before round \(round)")
            let a = try await isolated(attack)
            #expect(a.stdout?.text?.contains("listening") == true, "round \(round): the attack did not run: \(a.stdout?.text ?? "") \(a.stderr?.text ?? "")")
            #expect(a.stdout?.text?.contains("tmp-written") == true)
            for _ in 0..<3 {
                let b = try await isolated(probe)
                #expect(b.status == .ok, "\(b.message) \(b.stderr?.text ?? "")")
                let lines = (b.stdout?.text ?? "").split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                #expect(Array(lines.prefix(8)) == expected, "round \(round): B saw what A left: \(lines)")
                // sh, and ls and grep of the last pipeline: nothing of A's.
                #expect((Int(lines.dropFirst(8).first ?? "") ?? 99) <= 4, "round \(round): processes in B's namespace: \(lines)")
            }
        }
    }

    @Test("runs at the same time each get a namespace of their own")
    func parallelRunsAreDistinct() async throws {
        for _ in 0..<3 {
            let seen = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        let report = try await Runner().run(Job(arguments: ["/bin/sh", "-c", "readlink /proc/self/ns/net; sleep 0.4"],
                                                                standardOutput: .capture(max: 4096), limits: Limits(wallTime: .seconds(20)),
                                                                isolation: Isolation()))
                        return report.stdout?.text ?? ""
                    }
                }
                var all: [String] = []
                for try await text in group { all.append(text) }
                return all
            }
            #expect(seen.allSatisfy { $0.hasPrefix("net:[") }, "\(seen)")
            #expect(Set(seen).count == 4, "runs at the same time shared a network namespace: \(seen)")
            let host = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")
            #expect(!seen.contains(host + "\n"), "a run was in the host's network namespace")
        }
    }

    @Test("released, the pool leaves no namespace, thread or mount behind; the next run starts it again")
    func releaseLeavesNothing() async throws {
        let mountsBefore = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8).split(separator: "\n").count
        _ = try await isolated("true")
        _ = try await isolated("true")
        #expect(try await waitForPool(Runner.preparedNetworkNamespaceCapacity))
        #expect(heldNetworkNamespaces() >= Runner.preparedNetworkNamespaceCapacity, "the pool's namespaces are not held by descriptor")
        #expect(poolThreads() == 1, "the pool's thread (named corral-netns) is not there")
        try await onThread { Runner.releasePreparedNamespaces() }
        #expect(Runner.preparedNetworkNamespaces.isEmpty)
        #expect(!Runner.preparedNamespaceThreadRuns)
        #expect(heldNetworkNamespaces() == 0, "network namespaces still held after release")
        #expect(poolThreads() == 0, "the pool's thread is still there")
        // No thread of this process was left in another network namespace.
        let own = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/ns/net")
        for task in try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task") {
            if let link = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/task/\(task)/ns/net") {
                #expect(link == own, "thread \(task) is in \(link)")
            }
        }
        let mountsAfter = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8).split(separator: "\n").count
        #expect(mountsAfter == mountsBefore)
        let again = try await isolated("readlink /proc/self/ns/net")
        #expect(again.status == .ok)
        #expect(try await waitForPool(1), "the pool did not start again")
    }
}
}
