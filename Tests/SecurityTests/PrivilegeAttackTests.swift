import Corral
import CorralTestSupport
import Foundation
import Testing

/// Programs that ran as root (plain runs as root, `--user 0` isolated) moved themselves out
/// of their cgroups, signalled Corral and reached host root through /proc/sys.
extension SecurityTests {
@Suite("Privileges", .enabled(if: isRoot, Comment(rawValue: needsRoot)))
struct PrivilegeAttackTests {
    func plain(_ script: String, user: RunUser? = nil, isolation: Isolation? = nil) async throws -> RunReport {
        try await Runner().run(Job(arguments: ["/bin/sh", "-c", script], standardOutput: .capture(max: 1 << 16),
                                   standardError: .capture(max: 1 << 16), limits: Limits(wallTime: .seconds(20)),
                                   isolation: isolation, user: user))
    }

    @Test("a plain run started by root runs as nobody, with no capability, no groups and no_new_privs")
    func plainRunIsNobody() async throws {
        let report = try await plain("id -u; id -g; id -G; grep -E '^(CapEff|CapPrm|NoNewPrivs)' /proc/self/status | awk '{print $2}'")
        #expect(report.status == .ok, "\(report.message)")
        #expect(report.stdout?.text == "65534\n65534\n65534\n0000000000000000\n0000000000000000\n1\n")
    }

    @Test("a plain run cannot leave its cgroups, make sub-cgroups in them, or signal Corral")
    func plainRunStaysContained() async throws {
        let corral = getpid()
        let script = """
        for f in /sys/fs/cgroup/cgroup.procs /sys/fs/cgroup/*/cgroup.procs; do
          [ -e "$f" ] && echo $$ 2>/dev/null > "$f" && echo "moved out through $f"
        done
        for line in $(cut -d: -f3 /proc/self/cgroup); do
          for root in /sys/fs/cgroup /sys/fs/cgroup/*; do
            [ -d "$root$line" ] && mkdir "$root$line/escape" 2>/dev/null && echo "made $root$line/escape"
          done
        done
        kill -0 \(corral) 2>/dev/null && echo "signalled corral"
        echo done
        """
        let report = try await plain(script)
        #expect(report.stdout?.text == "done\n", "\(report.stdout?.text ?? "")")
    }

    @Test("--user 0 isolated: /proc/sys is read-only and /proc/sysrq-trigger is masked (core_pattern ran a host program as root)")
    func rootInsideCannotReachTheKernel() async throws {
        let before = try String(contentsOfFile: "/proc/sys/kernel/core_pattern", encoding: .utf8)
        // Writes back the value it reads: harmless if it gets through, and it must not. A kernel
        // without /proc/sysrq-trigger passes that line as if it were masked.
        let script = """
        id -u
        cat /proc/sys/kernel/core_pattern > /tmp/pattern
        cat /tmp/pattern > /proc/sys/kernel/core_pattern 2>/dev/null && echo "wrote core_pattern"
        echo 1 > /proc/sys/kernel/sysrq 2>/dev/null && echo "wrote sysrq"
        if [ -e /proc/sysrq-trigger ]; then stat -c %F /proc/sysrq-trigger; else echo "character special file"; fi
        head -c 1 /proc/kcore >/dev/null 2>&1 && echo "read kcore"
        chmod 666 /dev/null 2>/dev/null && echo "changed the host's /dev/null"
        echo x > /dev/null || echo "cannot write /dev/null"
        echo done
        """
        let report = try await plain(script, user: RunUser(uid: 0), isolation: Isolation())
        #expect(report.status == .ok, "\(report.message) \(report.stderr?.text ?? "")")
        #expect(report.stdout?.text == "0\ncharacter special file\ndone\n", "\(report.stdout?.text ?? "")")
        #expect(try String(contentsOfFile: "/proc/sys/kernel/core_pattern", encoding: .utf8) == before)
    }

    @Test("without root a user other than the caller is refused, isolated or not", .enabled(if: canBecomeUser1000))
    func otherUserWithoutRoot() throws {
        for isolate in [[], ["--isolate"]] {
            let result = try Spawn.run("/usr/bin/setpriv", ["--reuid=1000", "--regid=1000", "--clear-groups", corralBinary, "run"]
                                       + isolate + ["--user", "0", "--", "/bin/true"])
            #expect(result.status == 125, "\(result.standardError)")
            #expect(result.standardError.contains("needs root"), "\(result.standardError)")
        }
    }
}
}
