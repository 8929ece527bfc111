import CCorral
#if canImport(Glibc)
import Glibc
#endif

/// The CPUs a run is pinned to, written as a Linux CPU list: `"1"`, `"0-1,3"`. Only the
/// validating initializers make one, so a value holds at least one CPU, each at most
/// ``maximumCPU``, sorted and without repeats. Whether the CPUs can be had here (online and
/// in Corral's own affinity) is a property of the host: ``checkAvailable()``.
public struct CPUList: Sendable, Hashable, CustomStringConvertible {
    /// The CPU numbers, ascending, no repeats, never empty.
    public let cpus: [Int]

    /// The highest CPU number taken (the kernel's `NR_CPUS` is at most 8192).
    public static let maximumCPU = 8191
    static let maskWords = (maximumCPU + 1) / 64

    /// Parses a CPU list: comma-separated numbers and ranges `N-M` (N ≤ M), decimal, no
    /// spaces. The message names what is wrong.
    public init(_ text: String) throws(CorralError) {
        func refuse(_ why: String) -> CorralError {
            CorralError(.invalidJob, "cpus: \"\(text)\" is not a CPU list (\(why)); write it as \"1\" or \"0-1,3\"")
        }
        func number(_ part: Substring) throws(CorralError) -> Int {
            guard !part.isEmpty, part.count <= 5, part.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
                  let value = Int(part) else { throw refuse("\"\(part)\" is not a CPU number") }
            guard value <= Self.maximumCPU else { throw refuse("CPU \(value) is above \(Self.maximumCPU)") }
            return value
        }
        guard !text.isEmpty else { throw refuse("it is empty") }
        var set = Set<Int>()
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = item.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
            let low = try number(bounds[0])
            let high = try bounds.count > 1 ? number(bounds[1]) : low
            guard low <= high else { throw refuse("the range \(item) runs backwards") }
            set.formUnion(low...high)
        }
        cpus = set.sorted()
    }

    /// The list of these CPUs (at least one, each 0...maximumCPU).
    public init(cpus: some Sequence<Int>) throws(CorralError) {
        let set = Set(cpus)
        guard !set.isEmpty else { throw CorralError(.invalidJob, "cpus: no CPU given") }
        if let bad = set.first(where: { $0 < 0 || $0 > Self.maximumCPU }) {
            throw CorralError(.invalidJob, "cpus: CPU \(bad) is not a CPU number (0...\(Self.maximumCPU))")
        }
        self.cpus = set.sorted()
    }

    /// The canonical CPU list, ranges folded: `"0-2,5"`.
    public var description: String {
        var parts: [String] = []
        var index = 0
        while index < cpus.count {
            var end = index
            while end + 1 < cpus.count && cpus[end + 1] == cpus[end] + 1 { end += 1 }
            parts.append(end == index ? "\(cpus[index])" : "\(cpus[index])-\(cpus[end])")
            index = end + 1
        }
        return parts.joined(separator: ",")
    }

    public func isSubset(of other: CPUList) -> Bool { Set(cpus).isSubset(of: other.cpus) }

    /// The affinity mask for `sched_setaffinity`: CPU n is bit n % 64 of word n / 64, as
    /// many words as the highest CPU needs.
    var mask: [UInt64] {
        var words = [UInt64](repeating: 0, count: cpus.last! / 64 + 1)
        for cpu in cpus { words[cpu / 64] |= 1 << UInt64(cpu % 64) }
        return words
    }

    /// The CPUs the kernel has online (`/sys/devices/system/cpu/online`), or nil when that
    /// cannot be read.
    public static func online() -> CPUList? {
        guard let bytes = ProcFS.read("/sys/devices/system/cpu/online") else { return nil }
        let text = String(decoding: bytes, as: UTF8.self).trimmed
        return try? CPUList(text)
    }

    /// The CPUs this thread may run on (`sched_getaffinity`): what Corral itself was given,
    /// e.g. by `taskset` or its own cpuset.
    public static func allowed() -> CPUList? {
        var words = [UInt64](repeating: 0, count: maskWords)
        guard corral_allowed_cpus(&words, Int32(words.count)) == 0 else { return nil }
        var cpus: [Int] = []
        for (index, word) in words.enumerated() where word != 0 {
            for bit in 0..<64 where word & (1 << UInt64(bit)) != 0 { cpus.append(index * 64 + bit) }
        }
        return try? CPUList(cpus: cpus)
    }

    /// Every CPU is online and Corral may use it; otherwise an error naming the first that
    /// is not, and what could be had.
    public func checkAvailable() throws(CorralError) {
        guard let online = Self.online() else {
            throw CorralError(.system, "cpus: cannot read the online CPUs (/sys/devices/system/cpu/online)")
        }
        if let missing = cpus.first(where: { !online.cpus.contains($0) }) {
            throw CorralError(.invalidJob, "cpus: CPU \(missing) is not online (online: \(online))")
        }
        guard let allowed = Self.allowed() else {
            throw CorralError(.system, "cpus: sched_getaffinity: \(SetupFailure.describe(errno))")
        }
        if let outside = cpus.first(where: { !allowed.cpus.contains($0) }) {
            throw CorralError(.invalidJob, "cpus: CPU \(outside) is not one Corral may use (its own affinity: \(allowed))")
        }
    }
}

extension CPUList: Codable {
    /// A CPU list is a string in JSON: `"0-1,3"`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        do { self = try CPUList(text) } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.message)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
