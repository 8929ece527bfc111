/// The spec's pipes: declared once, each with exactly one reader and one writer.
extension SpecParser {
    func pipeNames(_ value: JSONValue?) throws(SpecError) -> [String] {
        guard let value else { return [] }
        var names: [String] = []
        for (index, item) in try array(value, "pipes").enumerated() {
            let name: String
            if case .object = item {
                let fields = try object(item, "pipes[\(index)]", allowed: ["name"])
                guard let nameValue = fields["name"] else { throw SpecError("pipes[\(index)].name", "missing") }
                name = try nonEmptyString(nameValue, "pipes[\(index)].name")
            } else {
                name = try nonEmptyString(item, "pipes[\(index)]")
            }
            if names.contains(name) { throw SpecError("pipes[\(index)]", "pipe \"\(name)\" is declared twice") }
            names.append(name)
        }
        return names
    }

    /// Every pipe has exactly one reader and one writer; every reference names a pipe.
    func checkPipes(_ pipes: [String], _ processes: [ProcessSpec]) throws(SpecError) {
        var readers: [String: String] = [:]
        var writers: [String: String] = [:]
        func use(_ name: String, _ end: PipeEndSpec.End, _ path: String) throws(SpecError) {
            guard pipes.contains(name) else { throw SpecError(path, "unknown pipe \"\(name)\"") }
            if end == .read {
                if let other = readers[name] { throw SpecError(path, "pipe \"\(name)\" already has a reader (\(other))") }
                readers[name] = path
            } else {
                if let other = writers[name] { throw SpecError(path, "pipe \"\(name)\" already has a writer (\(other))") }
                writers[name] = path
            }
        }
        for (index, process) in processes.enumerated() {
            let path = "processes[\(index)]"
            if case .pipe(let name) = process.stdin { try use(name, .read, "\(path).stdin") }
            if case .pipe(let name) = process.stdout { try use(name, .write, "\(path).stdout") }
            if case .pipe(let name) = process.stderr { try use(name, .write, "\(path).stderr") }
            for (fd, end) in process.fds.sorted(by: { $0.key < $1.key }) { try use(end.pipe, end.end, "\(path).fds.\(fd)") }
        }
        for (index, name) in pipes.enumerated() {
            if readers[name] == nil { throw SpecError("pipes[\(index)]", "pipe \"\(name)\" has no reader") }
            if writers[name] == nil { throw SpecError("pipes[\(index)]", "pipe \"\(name)\" has no writer") }
        }
    }
}
