#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// CLOCK_MONOTONIC in nanoseconds: the one clock every sample is taken with.
func monotonicNanos() -> Int64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
}

/// Microseconds between two `monotonicNanos()` readings.
func micros(from start: Int64, to end: Int64) -> Double {
    Double(end - start) / 1_000
}
