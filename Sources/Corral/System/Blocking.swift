#if canImport(Glibc)
import Glibc
#endif

/// Runs work that can block (opening, creating, chowning and copying files, mounting) on a
/// thread of its own, so the cooperative pool (as wide as the CPUs) never waits on the
/// filesystem: a FIFO, a slow disk or a stuck mount stalls one job, not every task.
enum Blocking {
    static func run<T: Sendable, E: Error>(_ work: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
        let result: Result<T, E> = await withCheckedContinuation { continuation in
            let box = Unmanaged.passRetained(Work(body: {
                do throws(E) {
                    continuation.resume(returning: .success(try work()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }))
            var thread = pthread_t()
            let started = pthread_create(&thread, nil, { context in
                let work = Unmanaged<Work>.fromOpaque(context!).takeRetainedValue()
                work.body()
                return nil
            }, box.toOpaque())
            if started == 0 {
                pthread_detach(thread)
            } else {
                // No thread to be had: do it here rather than not at all.
                box.takeRetainedValue().body()
            }
        }
        return try result.get()
    }

    private final class Work: @unchecked Sendable {
        let body: () -> Void
        init(body: @escaping () -> Void) { self.body = body }
    }
}
