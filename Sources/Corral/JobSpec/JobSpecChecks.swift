extension JobSpec {
    /// Every process named by a file or a collected file exists, and a job of several
    /// processes says whose directory each collected file comes from (each process has a
    /// directory of its own).
    public func checkProcessReferences() throws(SpecError) {
        let names = Set(processes.map(\.name))
        for (index, file) in files.enumerated() {
            if let process = file.process, !names.contains(process) {
                throw SpecError("files[\(index)].process", "no process is named \"\(process)\"")
            }
        }
        for (index, collected) in collect.enumerated() {
            if let process = collected.process {
                guard names.contains(process) else {
                    throw SpecError("collect[\(index)].process", "no process is named \"\(process)\"")
                }
            } else if processes.count > 1 {
                throw SpecError("collect[\(index)].process", "missing: each process of a job has a directory of its own; say whose file this is")
            }
        }
    }

    /// The name of the process `collect[i]` or a file refers to, defaulting to the only one.
    func owner(_ process: String?) -> String {
        process ?? processes[0].name
    }
}
