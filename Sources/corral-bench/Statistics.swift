/// Order statistics of one series of samples, in microseconds.
struct Summary: Sendable {
    let count: Int
    let median: Double
    let p10: Double
    let p90: Double
    let min: Double
    let max: Double

    init(_ samples: [Double]) {
        let sorted = samples.sorted()
        count = sorted.count
        median = Self.percentile(sorted, 0.5)
        p10 = Self.percentile(sorted, 0.1)
        p90 = Self.percentile(sorted, 0.9)
        min = sorted.first ?? .nan
        max = sorted.last ?? .nan
    }

    /// The percentile `fraction` of already sorted samples, interpolating linearly between
    /// the two nearest ranks (so the 0.5 of an even count is the mean of the middle two).
    static func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let position = fraction * Double(sorted.count - 1)
        let lower = Int(position.rounded(.down))
        let upper = Swift.min(lower + 1, sorted.count - 1)
        let weight = position - Double(lower)
        return sorted[lower] + (sorted[upper] - sorted[lower]) * weight
    }
}
