import Corral
import Testing

@Suite("corral doctor: the cold cgroup migration")
struct ColdMigrationTests {
    @Test("favordynmods is found among a cgroup mount's super options, v1 or v2, and nowhere else")
    func favordynmods() {
        let plain = """
            31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
            32 31 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
            45 31 0:41 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
            """
        #expect(!ColdMigration.favordynmodsMounted(plain))
        #expect(ColdMigration.favordynmodsMounted(plain + "\n46 31 0:42 / /sys/fs/cgroup/x rw - cgroup2 cgroup2 rw,nsdelegate,favordynmods"))
        #expect(ColdMigration.favordynmodsMounted(plain + "\n47 31 0:43 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids,favordynmods"))
        // Only the super options count, and only on cgroup file systems.
        #expect(!ColdMigration.favordynmodsMounted(plain + "\n48 31 0:44 / /mnt/favordynmods rw,favordynmods - tmpfs tmpfs rw"))
        #expect(!ColdMigration.favordynmodsMounted(plain + "\n49 31 0:45 / /mnt rw - tmpfs tmpfs rw,favordynmods"))
    }

    @Test("the host's report is consistent: a host that migrates pays unless rcu_expedited (without rcu_normal) or favordynmods, and then says what to set")
    func report() {
        let cold = HostReport.inspect().coldMigration
        let fast = cold.favordynmods || (cold.rcuExpedited == true && cold.rcuNormal != true)
        #expect(cold.paysGracePeriod == (cold.runsMigrate && !fast))
        #expect((cold.advice != nil) == cold.paysGracePeriod)
        if cold.paysGracePeriod { #expect(cold.advice?.contains("rcu_expedited") == true) }
    }
}
