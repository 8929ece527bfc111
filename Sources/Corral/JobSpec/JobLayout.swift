import CCorral
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What one process of a job is started with: its job, its descriptors (target → an open
/// descriptor its run takes over) and its working directory as an O_PATH descriptor.
struct PreparedProcess: Sendable {
    let job: Job
    let descriptors: [Int32: Int32]
    let directory: Int32
}

/// A job's working directory laid out before its processes start: one directory per process
/// (the job's own for a job of one), the files of the spec put in, each handed to the user
/// its process runs as, the stream files opened and the pipes made. Every path of the spec
/// is resolved beneath a directory's descriptor. Blocking work: call it off the
/// cooperative pool (``Blocking``).
final class JobLayout: Sendable {
    let workdir: Workdir
    /// Each process's directory, in the spec's order (kept open for `collect`).
    /// Closed early by ``keepOnlyWorkdir()`` (a step's layout, held until the job ends), which
    /// also releases ``leases``.
    private let openDirectories: Mutex<[DirectoryHandle]>
    private let prepared: Mutex<[PreparedProcess]?>
    /// The users leased to the job's processes (``RunnerConfiguration/userRange``).
    private let leases: [UserLease]
    /// The processes' names, in the order of `directories`.
    private let names: [String]
    /// Where `collect` entries with `"store": true` go.
    private let store: FileStore?
    /// Whether the working directory is the job's own (removed at the finish), or a step's
    /// that its tests share (only the processes' directories are removed).
    private let ownsWorkdir: Bool

    init(workdir: Workdir, directories: [DirectoryHandle], prepared: [PreparedProcess], leases: [UserLease], names: [String],
                 store: FileStore?, ownsWorkdir: Bool) {
        self.workdir = workdir
        self.ownsWorkdir = ownsWorkdir
        self.names = names
        openDirectories = Mutex(directories)
        self.prepared = Mutex(prepared)
        self.leases = leases
        self.store = store
    }

    /// The processes, once: their descriptors now belong to their runs.
    func takeProcesses() -> [PreparedProcess] {
        prepared.withLock { taken in
            defer { taken = nil }
            return taken ?? []
        }
    }

    /// What a later step takes files from: the working directory (open until
    /// ``finish(keep:)``) and the processes' names, each a directory beneath it.
    var stepDirectories: StepDirectories {
        StepDirectories(workdir: workdir.handle, processes: names)
    }

    /// A finished step's layout, kept for the files later steps take: closes the processes'
    /// directories, keeping only the working directory's descriptor until ``finish(keep:)``
    /// (a job of steps holds one descriptor per step it keeps, not one per process of every
    /// step: a client chooses both counts), and gives the processes' users back (a job of 64
    /// steps of 16 processes held 1024 uids until it ended, more than a server's whole
    /// `--user-range` often is, so every other job failed meanwhile). The step's processes
    /// have all ended; their files stay their users', in Corral's 0700 working directory,
    /// which the next holder of such a uid cannot enter.
    func keepOnlyWorkdir() {
        closeDirectories()
        leases.forEach { $0.release() }
    }

    private func closeDirectories() {
        let closing = openDirectories.withLock { open in
            defer { open = [] }
            return open
        }
        closing.forEach { $0.close() }
    }

    /// After the runs: each entry read (or stored) in turn, none once `stop` has stopped the
    /// job (a server's deadline: this work is outside every run's wall time).
    func collect(_ spec: JobSpec, budget: ReportBudget, stop: RunStop?) -> [CollectedFile] {
        spec.collect.map { item in
            let index = spec.processes.firstIndex { $0.name == spec.owner(item.process) } ?? 0
            if let stop, stop.isStopped {
                return CollectedFile(path: item.path.description, content: nil, error: CollectedFile.notCollected(stop),
                                     process: spec.processes[index].name)
            }
            var file = openDirectories.withLock { directories -> CollectedFile in
                guard index < directories.count else {
                    return CollectedFile(path: item.path.description, content: nil, error: "the process's directory is closed")
                }
                return item.store && store != nil ? directories[index].collectToStore(item, store: store!, stop: stop)
                    : directories[index].collect(item, budget: budget)
            }
            file.process = spec.processes[index].name
            return file
        }
    }

    /// Closes what no run took, and removes the directory unless it is kept.
    func finish(keep: Bool) {
        for process in takeProcesses() { Self.close(process) }
        closeDirectories()
        if !ownsWorkdir {
            removeProcessDirectories(names)
        } else if keep {
            workdir.handle.close()
        } else {
            workdir.remove()
        }
        leases.forEach { $0.release() }
    }

    /// Removes the processes' directories from a shared working directory (the job's
    /// directory is Corral's own, 0700: no program can change the path above them).
    private func removeProcessDirectories(_ names: [String]) {
        for name in names { Workdir.removeTree(workdir.path + "/" + name) }
    }

    static func close(_ process: PreparedProcess) {
        process.descriptors.values.forEach { _ = Glibc.close($0) }
        _ = Glibc.close(process.directory)
    }
}
