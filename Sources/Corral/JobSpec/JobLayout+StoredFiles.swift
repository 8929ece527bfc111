#if canImport(Glibc)
import Glibc
#endif

extension JobLayout {
    /// Puts the job's stored files in place: a hard link to the store's read-only file where
    /// Corral is root and the process runs as another user (it cannot write a root-owned
    /// 0444 file, nor chmod it), else a copy. Returns the identities of what it placed.
    static func placeStoredFiles(_ spec: JobSpec, directories: [DirectoryHandle], store: FileStore?,
                                         limit: UInt64?) throws(CorralError) -> Set<FileIdentity> {
        var placed: Set<FileIdentity> = []
        for file in spec.files {
            guard case .stored(let id) = file.source else { continue }
            guard let store else { throw CorralError(.invalidJob, "files: \(file.path): fileId \(id): this runner has no file store") }
            for (index, process) in spec.processes.enumerated() where file.process == nil || file.process == process.name {
                let user = RunUser.of(Job(arguments: process.args, isolation: process.isolation, user: process.user))
                let link = geteuid() == 0 && user.uid != 0
                placed.insert(try directories[index].placeStored(file, from: store, link: link, limit: limit))
            }
        }
        return placed
    }
}
