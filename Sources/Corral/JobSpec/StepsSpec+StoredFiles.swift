extension StepsSpec {
    /// Every stored file the job names, in its order: its steps' `files[].fileId`, its tests'
    /// stdin and answers by `fileId`, its custom checkers' files. What ``StepsRunner`` holds
    /// in the store until the job ends.
    public var storedFileIds: [(field: String, id: String)] {
        var ids: [(field: String, id: String)] = []
        for (index, step) in steps.enumerated() {
            let path = "steps[\(index)]"
            for (fileIndex, file) in step.job.files.enumerated() {
                if case .stored(let id) = file.source { ids.append(("\(path).files[\(fileIndex)].fileId", id.hex)) }
            }
            for (testIndex, test) in step.tests.enumerated() {
                if case .fileId(let id) = test.input { ids.append(("\(path).tests[\(testIndex)].stdin.fileId", id)) }
                if case .fileId(let id) = test.answer { ids.append(("\(path).tests[\(testIndex)].answer.fileId", id)) }
            }
            if case .custom(let checker) = step.checker {
                for (fileIndex, file) in checker.files.enumerated() {
                    if case .stored(let id) = file.source { ids.append(("\(path).checker.files[\(fileIndex)].fileId", id.hex)) }
                }
            }
        }
        return ids
    }
}

extension StepsRunner {
    /// Holds every stored file the job names until it ends (nil when it names none, or the
    /// runner's store is not a ``FileStore``): none is deleted (`DELETE /v1/files/{id}` is a
    /// 409) or evicted by an upload under a later step or test, and a file the store lacks
    /// refuses the job before any step runs.
    static func leaseStoredFiles(_ spec: StepsSpec, store: (any StoredFiles)?) throws(CorralError) -> FileLease? {
        let named = spec.storedFileIds
        guard !named.isEmpty, let store = store as? FileStore else { return nil }
        var ids: [FileId] = []
        for (field, text) in named {
            do {
                ids.append(try FileId(text))
            } catch {
                throw CorralError(.invalidJob, "\(field): \(text): \(error.description)")
            }
        }
        do {
            return try store.acquire(ids)
        } catch {
            let missing = named.first { (try? FileId($0.id)).map { store.size(of: $0) == nil } ?? true }
            throw CorralError(error.kind == .notFound ? .invalidJob : .system, "\(missing?.field ?? "fileId"): \(error.message)")
        }
    }
}
