import ArgumentParser
import Corral

/// `--user-range FIRST-LAST`: a uid of its own for each run that names no user (as root);
/// shared by `run` and `serve`.
public struct UserRangeOption: ParsableArguments {
    public init() {}

    @Option(name: .customLong("user-range"),
            help: ArgumentHelp("As root: give each run that names no user a uid (and gid) of its own from FIRST-LAST while it runs, instead of nobody (e.g. 60000-60999: uids no one else uses).", valueName: "first-last"))
    public var userRange: String?

    public func range() throws -> ClosedRange<UInt32>? {
        try UserRangeArgument(userRange: userRange).range()
    }
}

/// `--user-range` as given.
public struct UserRangeArgument: Sendable, Equatable {
    public var userRange: String?

    public init(userRange: String? = nil) {
        self.userRange = userRange
    }

    public func range() throws -> ClosedRange<UInt32>? {
        guard let userRange else { return nil }
        let parts = userRange.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let first = UInt32(parts[0]), let last = UInt32(parts[1]), first <= last else {
            throw ValidationError("--user-range: expected FIRST-LAST (uids, FIRST <= LAST), got '\(userRange)'")
        }
        guard first > 0 else { throw ValidationError("--user-range: uid 0 is root; start the range above it") }
        return first...last
    }
}
