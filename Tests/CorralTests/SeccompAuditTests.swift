@testable import Corral
import Glibc
import Testing

private let libseccomp = dlopen("libseccomp.so.2", RTLD_NOW | RTLD_LOCAL) != nil

@Suite("The kernel's record of a seccomp kill")
struct SeccompAuditTests {
    @Test("an audit record as the netlink socket gives it: pid, signal, ABI and call number")
    func parsesNetlinkText() {
        let text = #"audit(1795334514.277:581): auid=4294967295 uid=65534 gid=65534 ses=4294967295 pid=11374 comm="python3" exe="/usr/bin/python3.11" sig=31 arch=c000003e syscall=101 compat=0 ip=0x7f4abfaac829 code=0x80000000"#
        #expect(SeccompAudit.parse(fields: text[...]) == SeccompAudit.Record(pid: 11374, signal: 31, arch: 0xc000_003e, syscall: 101))
        #expect(SeccompAudit.parse(fields: "audit(1.2:3): pid=12 sig=31"[...]) == nil) // no arch or call
    }

    @Test("a seccomp kill's line in the kernel's log gives pid, signal, ABI and call number")
    func parsesRecord() {
        let line = #"audit: type=1326 audit(1795333711.185:510): auid=4294967295 uid=65534 gid=65534 ses=4294967295 pid=26875 comm="python3" exe="/usr/bin/python3.11" sig=31 arch=c000003e syscall=310 compat=0 ip=0x7f4abfaac829 code=0x80000000"#
        #expect(SeccompAudit.parse(logLine: line[...]) == SeccompAudit.Record(pid: 26875, signal: 31, arch: 0xc000_003e, syscall: 310))
        let i386 = #"audit: type=1326 audit(1795334072.169:516): auid=4294967295 uid=65534 gid=65534 ses=4294967295 pid=749 comm="abi" exe="/opt/abi/abi" sig=31 arch=40000003 syscall=20 compat=1 ip=0x561ef672f148 code=0x80000000"#
        #expect(SeccompAudit.parse(logLine: i386[...]) == SeccompAudit.Record(pid: 749, signal: 31, arch: 0x4000_0003, syscall: 20))
    }

    @Test("other lines are not records")
    func ignoresOthers() {
        #expect(SeccompAudit.parse(logLine: "audit: type=1400 audit(1.2:3): apparmor=\"DENIED\" pid=5 sig=31 arch=c000003e syscall=1"[...]) == nil)
        #expect(SeccompAudit.parse(logLine: "EXT4-fs (vda): mounted filesystem"[...]) == nil)
        #expect(SeccompAudit.parse(logLine: "audit: type=1326 audit(1.2:3): pid=12 sig=31"[...]) == nil) // no arch or call
    }

    @Test("what the program named itself cannot fake a field: the first of each key counts")
    func firstFieldWins() {
        // The kernel hex-encodes a comm or exe holding a space; a single token with "=" in a
        // quoted name comes after the real pid.
        let line = #"audit: type=1326 audit(1.2:3): auid=4294967295 uid=65534 gid=65534 ses=4294967295 pid=300 comm="pid=1" exe="/box/syscall=0" sig=31 arch=c000003e syscall=101 compat=0 ip=0x1 code=0x80000000"#
        #expect(SeccompAudit.parse(logLine: line[...]) == SeccompAudit.Record(pid: 300, signal: 31, arch: 0xc000_003e, syscall: 101))
    }

    #if arch(x86_64)
    @Test("a call is named with libseccomp, and with its ABI when foreign", .enabled(if: libseccomp, "needs libseccomp.so.2"))
    func describes() {
        #expect(SeccompAudit.describe(.init(pid: 1, signal: 31, arch: 0xc000_003e, syscall: 101)) == "ptrace (system call 101)")
        #expect(SeccompAudit.describe(.init(pid: 1, signal: 31, arch: 0x4000_0003, syscall: 26)) == "ptrace (i386 ABI, system call 26)")
        #expect(SeccompAudit.describe(.init(pid: 1, signal: 31, arch: 0xc000_003e, syscall: 0x4000_0027)) == "getpid (x32 ABI, system call 39 | 0x40000000)")
        #expect(SeccompAudit.describe(.init(pid: 1, signal: 31, arch: 0xc000_003e, syscall: 99_999)) == "system call 99999 (a number libseccomp does not know)")
    }
    #endif
}
