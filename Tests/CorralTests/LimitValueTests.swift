import Corral
import Testing

@Suite("Limit values")
struct LimitValueTests {
    @Test("durations", arguments: [
        ("2", 2.0), ("1.5", 1.5), ("500ms", 0.5), ("2s", 2.0), ("1m", 60.0), ("0.25", 0.25), ("250us", 0.00025), ("1h", 3600.0),
    ])
    func durations(text: String, seconds: Double) throws {
        #expect(try LimitValue.parseDuration(text).seconds == seconds)
    }

    @Test("bad durations are refused", arguments: [
        "", "-1", "0", "0s", "0.0", "nan", "NaN", "inf", "infinity", "1e3", "abc", "1.2.3", "+1", "1 s", "10000000000", "s", ".", "1x",
    ])
    func badDurations(text: String) {
        #expect(throws: LimitParseError.self) { try LimitValue.parseDuration(text) }
    }

    @Test("sizes", arguments: [
        ("1024", UInt64(1024)), ("64M", 64 << 20), ("64m", 64 << 20), ("1K", 1024), ("1KiB", 1024), ("2MiB", 2 << 20),
        ("1G", 1 << 30), ("1GiB", 1 << 30), ("123K", 125_952), ("1.5K", 1536), ("7B", 7),
    ])
    func sizes(text: String, bytes: UInt64) throws {
        #expect(try LimitValue.parseSize(text) == bytes)
    }

    @Test("bad sizes are refused", arguments: [
        "", "-1", "0", "0K", "K", "nan", "inf", "1e6", "12Q", "99999999999999999999", "9999999999G", "16777216T", "0.1B", "1,024",
    ])
    func badSizes(text: String) {
        #expect(throws: LimitParseError.self) { try LimitValue.parseSize(text) }
    }

    @Test("counts", arguments: ["0", "-3", "1.5", "x", "", "99999999999999999999"])
    func badCounts(text: String) {
        #expect(throws: LimitParseError.self) { try LimitValue.parseCount(text) }
    }

    @Test("a negative value says it must be positive")
    func negativeMessage() {
        #expect(throws: LimitParseError("invalid duration '-1': must be greater than zero")) {
            try LimitValue.parseDuration("-1")
        }
    }

    @Test("the wall limit defaults to 2 × cpu + 1 s only when a CPU limit is given")
    func defaultWall() {
        #expect(Limits(cpuTime: .seconds(2)).effectiveWallTime == .seconds(5))
        #expect(Limits(cpuTime: .seconds(2), wallTime: .seconds(1)).effectiveWallTime == .seconds(1))
        #expect(Limits().effectiveWallTime == nil)
    }
}
