import CCorral
#if canImport(Glibc)
import Glibc
#endif

/// A descriptor that becomes ready when a run's memory cgroup has an event (an OOM among
/// them), so Corral learns of an OOM kill without reading the cgroup's counters over and
/// over: on v1 an eventfd registered for `memory.oom_control` through `cgroup.event_control`
/// (ready to read: POLLIN); on v2 `memory.events` itself (the kernel flags it POLLPRI when
/// it changes, until it is read again). Used by the reaper thread only.
final class CgroupMemoryEvents: @unchecked Sendable {
    let descriptor: Int32
    let pollEvents: Int16
    private let isEventfd: Bool
    private var closed = false

    private init(descriptor: Int32, pollEvents: Int16, isEventfd: Bool) {
        self.descriptor = descriptor
        self.pollEvents = pollEvents
        self.isEventfd = isEventfd
    }

    deinit { close() }

    /// v1: an eventfd the kernel signals at every OOM of the memory cgroup `directory`. Nil
    /// when the kernel refuses (then Corral reads `memory.oom_control` at each sample).
    static func v1(_ directory: String) -> CgroupMemoryEvents? {
        let event = corral_eventfd()
        guard event >= 0 else { return nil }
        let control = open(directory + "/memory.oom_control", O_RDONLY | O_CLOEXEC)
        guard control >= 0 else {
            Glibc.close(event)
            return nil
        }
        // The registration holds the eventfd; the control file is only named by it. It
        // ends when the eventfd is closed or the cgroup removed.
        defer { Glibc.close(control) }
        guard (try? CgroupFS.write(directory + "/cgroup.event_control", "\(event) \(control)")) != nil else {
            Glibc.close(event)
            return nil
        }
        return CgroupMemoryEvents(descriptor: event, pollEvents: Int16(POLLIN), isEventfd: true)
    }

    /// v2: `memory.events` of the cgroup `directory`, open for polling.
    static func v2(_ directory: String) -> CgroupMemoryEvents? {
        let fd = open(directory + "/memory.events", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        return CgroupMemoryEvents(descriptor: fd, pollEvents: Int16(POLLPRI), isEventfd: false)
    }

    /// Clears the ready state: reads the eventfd's count, or `memory.events` through this
    /// descriptor (which is what makes the kernel stop flagging it).
    func acknowledge() {
        var buffer = [UInt8](repeating: 0, count: isEventfd ? 8 : 512)
        _ = buffer.withUnsafeMutableBytes { isEventfd ? read(descriptor, $0.baseAddress, 8) : pread(descriptor, $0.baseAddress, $0.count, 0) }
    }

    func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(descriptor)
    }
}
