import Foundation

/// Runs blocking work (a blocking socket, a wait) on a thread of its own, never on the
/// cooperative pool, which has one thread per CPU and which a server in the same process,
/// or other clients, need.
public func onThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            do { continuation.resume(returning: try work()) } catch { continuation.resume(throwing: error) }
        }
        thread.start()
    }
}
