@testable import Corral
import Testing

struct CgroupHostTests {
    @Test func mountinfoEscapesAreUndone() {
        #expect(CgroupHost.unescape("/sys/fs/cgroup") == "/sys/fs/cgroup")
        #expect(CgroupHost.unescape("/mnt/a\\040b") == "/mnt/a b")
        #expect(CgroupHost.unescape("/mnt/tab\\011x\\134y") == "/mnt/tab\tx\\y")
        #expect(CgroupHost.unescape("/mnt/not\\08") == "/mnt/not\\08")
    }

    /// This host's own hierarchies are found (on these hosts: v1 memory and pids, v2 at
    /// /sys/fs/cgroup/unified or /sys/fs/cgroup).
    @Test func thisHostIsRead() {
        let host = CgroupHost.detect()
        #expect(host.unified != nil || !host.v1.isEmpty)
        for hierarchy in host.v1.values { #expect(hierarchy.mount.hasPrefix("/")) }
    }
}
