#if canImport(Glibc)
import Glibc
#endif

/// The store as the source of a test's `{"fileId": ...}` stdin or answer (``StepsRunner``).
extension FileStore: StoredFiles {
    public func open(id: String) throws(CorralError) -> Int32 {
        let fileId: FileId
        do { fileId = try FileId(id) } catch { throw CorralError(.invalidJob, "fileId \(id): \(error.description)") }
        do {
            return try open(fileId).descriptor
        } catch {
            throw CorralError(error.kind == .notFound ? .invalidJob : .system, error.description)
        }
    }
}
