extension JobSpec {
    /// The store files the spec names (`files[].fileId`), in its order, with the position of
    /// each in `files`: what a queued job holds in the store until it has run.
    public var storedFiles: [(index: Int, id: FileId)] {
        files.enumerated().compactMap { index, file in
            if case .stored(let id) = file.source { (index, id) } else { nil }
        }
    }
}
