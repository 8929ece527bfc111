#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension JobSpec {
    /// Parses and checks a job spec: unknown fields, wrong types, bad values, pipes with a
    /// missing, unknown or doubly used end are refused before anything runs.
    public static func parse(_ data: Data) throws(SpecError) -> JobSpec {
        try parse(data, isolationRequired: false)
    }

    /// `isolationRequired`: refuse a process whose spec says `"isolate": false` (a server
    /// that isolates every process).
    public static func parse(_ data: Data, isolationRequired: Bool) throws(SpecError) -> JobSpec {
        let root: JSONValue
        do {
            root = try JSONReader.read(Array(data))
        } catch {
            throw SpecError("", "not valid JSON: \(error.message) at byte \(error.offset)")
        }
        return try SpecParser(isolationRequired: isolationRequired).job(root)
    }
}

/// Walks the JSON tree, keeping the path for every error.
struct SpecParser {
    typealias Object = [String: JSONValue]
    var isolationRequired = false

    func job(_ root: JSONValue) throws(SpecError) -> JobSpec {
        let object = try self.object(root, "", allowed: ["processes", "pipes", "files", "collect", "workdir", "cpus"])
        guard let processesValue = object["processes"] else { throw SpecError("processes", "missing") }
        let processValues = try array(processesValue, "processes")
        guard !processValues.isEmpty else { throw SpecError("processes", "must hold at least one process") }
        var processes: [ProcessSpec] = []
        for (index, value) in processValues.enumerated() {
            processes.append(try process(value, "processes[\(index)]", index: index))
        }
        if let value = object["cpus"] {
            let cpus = try cpuList(value, "cpus")
            for index in processes.indices where processes[index].cpus == nil { processes[index].cpus = cpus }
        }
        var names: [String: Int] = [:]
        for (index, process) in processes.enumerated() {
            if let first = names[process.name] {
                throw SpecError("processes[\(index)].name", "\"\(process.name)\" is already the name of processes[\(first)]")
            }
            names[process.name] = index
        }
        let pipes = try pipeNames(object["pipes"])
        try checkPipes(pipes, processes)
        var files: [FileSpec] = []
        for (index, value) in try array(object["files"] ?? .array([]), "files").enumerated() {
            files.append(try file(value, "files[\(index)]"))
        }
        var collect: [CollectSpec] = []
        for (index, value) in try array(object["collect"] ?? .array([]), "collect").enumerated() {
            collect.append(try collected(value, "collect[\(index)]"))
        }
        var workdir = WorkdirSpec()
        if let value = object["workdir"] {
            let fields = try self.object(value, "workdir", allowed: ["keep"])
            if let keep = fields["keep"] { workdir.keep = try bool(keep, "workdir.keep") }
        }
        let spec = JobSpec(processes: processes, pipes: pipes, files: files, collect: collect, workdir: workdir)
        try spec.checkProcessReferences()
        return spec
    }

    // MARK: Processes

    func process(_ value: JSONValue, _ path: String, index: Int) throws(SpecError) -> ProcessSpec {
        let object = try self.object(value, path, allowed: ["name", "args", "env", "dir", "limits", "stdin", "stdout", "stderr", "fds", "isolate", "network",
                                                                   "ignoreSignals", "cpus"])
        let name = try object["name"].map { value throws(SpecError) in try processName(value, "\(path).name") } ?? "p\(index)"
        guard let argsValue = object["args"] else { throw SpecError("\(path).args", "missing: a process needs a program") }
        let args = try array(argsValue, "\(path).args").enumerated().map { item throws(SpecError) in
            try string(item.element, "\(path).args[\(item.offset)]")
        }
        guard let program = args.first, !program.isEmpty else { throw SpecError("\(path).args", "must name a program") }
        for (offset, argument) in args.enumerated() where argument.utf8.contains(0) {
            throw SpecError("\(path).args[\(offset)]", "contains a NUL byte")
        }
        var env = Job.defaultEnvironment
        if let envValue = object["env"] {
            env = [:]
            for (key, item) in try self.object(envValue, "\(path).env", allowed: nil) {
                guard !key.isEmpty, !key.contains("="), !key.utf8.contains(0) else { throw SpecError("\(path).env", "invalid variable name \"\(key)\"") }
                let text = try string(item, "\(path).env.\(key)")
                guard !text.utf8.contains(0) else { throw SpecError("\(path).env.\(key)", "contains a NUL byte") }
                env[key] = text
            }
        }
        let dir = try object["dir"].map { value throws(SpecError) in try relativePath(value, "\(path).dir") }
        let limits = try object["limits"].map { value throws(SpecError) in try self.limits(value, "\(path).limits") } ?? Limits()
        let stdin = try stream(object["stdin"], "\(path).stdin", input: true) ?? .null
        let stdout = try stream(object["stdout"], "\(path).stdout", input: false) ?? .capture(max: StreamSpec.defaultCaptureMax)
        let stderr = try stream(object["stderr"], "\(path).stderr", input: false) ?? .capture(max: StreamSpec.defaultCaptureMax)
        var fds: [Int32: PipeEndSpec] = [:]
        if let fdsValue = object["fds"] {
            for (key, item) in try self.object(fdsValue, "\(path).fds", allowed: nil) {
                let fdPath = "\(path).fds.\(key)"
                guard let number = Int32(key), number >= 3, number < 1024, String(number) == key else {
                    throw SpecError(fdPath, "descriptor must be a number from 3 to 1023 (0, 1 and 2 are stdin, stdout, stderr)")
                }
                let fields = try self.object(item, fdPath, allowed: ["pipe", "end"])
                guard let pipeValue = fields["pipe"] else { throw SpecError("\(fdPath).pipe", "missing") }
                guard let endValue = fields["end"] else { throw SpecError("\(fdPath).end", "missing: \"read\" or \"write\"") }
                guard let end = PipeEndSpec.End(rawValue: try string(endValue, "\(fdPath).end")) else {
                    throw SpecError("\(fdPath).end", "must be \"read\" or \"write\"")
                }
                fds[number] = PipeEndSpec(pipe: try nonEmptyString(pipeValue, "\(fdPath).pipe"), end: end)
            }
        }
        var isolation: Isolation?
        if let value = object["isolate"] {
            if try bool(value, "\(path).isolate") {
                isolation = Isolation()
            } else if isolationRequired {
                throw SpecError("\(path).isolate", "this server isolates every process (it was not started with --no-isolate)")
            }
        }
        if let value = object["network"] {
            guard let network = Isolation.Network(rawValue: try string(value, "\(path).network")) else {
                throw SpecError("\(path).network", "must be \"none\" or \"host\"")
            }
            guard isolation != nil else { throw SpecError("\(path).network", "goes with \"isolate\": true") }
            isolation?.network = network
        }
        let ignoreSignals = try object["ignoreSignals"].map { value throws(SpecError) in try ignoredSignals(value, "\(path).ignoreSignals") }
        let cpus = try object["cpus"].map { value throws(SpecError) in try cpuList(value, "\(path).cpus") }
        return ProcessSpec(name: name, args: args, env: env, dir: dir, limits: limits, stdin: stdin, stdout: stdout, stderr: stderr,
                           fds: fds, isolation: isolation, ignoreSignals: ignoreSignals ?? SignalSet(), cpus: cpus)
    }

    /// A CPU list (``CPUList``) whose CPUs are online and Corral's to use.
    func cpuList(_ value: JSONValue, _ path: String) throws(SpecError) -> CPUList {
        let text = try string(value, path)
        do throws(CorralError) {
            let cpus = try CPUList(text)
            try cpus.checkAvailable()
            return cpus
        } catch {
            throw SpecError(path, error.message.hasPrefix("cpus: ") ? String(error.message.dropFirst(6)) : error.message)
        }
    }

    private func stream(_ value: JSONValue?, _ path: String, input: Bool) throws(SpecError) -> StreamSpec? {
        guard let value else { return nil }
        switch value {
        case .null: return .null
        case .string:
            return .file(try relativePath(value, path))
        case .object(let object):
            let allowed: Set<String> = input ? ["file", "content", "contentBase64", "pipe"] : ["file", "pipe", "capture"]
            guard object.count == 1, let key = object.keys.first else {
                throw SpecError(path, "must have exactly one of \(allowed.sorted().joined(separator: ", "))")
            }
            guard allowed.contains(key) else {
                throw SpecError("\(path).\(key)", input ? "unknown field (stdin takes file, content, contentBase64 or pipe)"
                                                         : "unknown field (\(path.hasSuffix("stdout") ? "stdout" : "stderr") takes file, pipe or capture)")
            }
            let item = object[key]!
            switch key {
            case "file": return .file(try relativePath(item, "\(path).file"))
            case "content": return .content(Array(try string(item, "\(path).content").utf8))
            case "contentBase64":
                guard let bytes = Base64.decode(try string(item, "\(path).contentBase64")) else {
                    throw SpecError("\(path).contentBase64", "not valid base64")
                }
                return .content(bytes)
            case "pipe": return .pipe(try nonEmptyString(item, "\(path).pipe"))
            default: return try capture(item, "\(path).capture")
            }
        default:
            throw SpecError(path, "must be null, a file name, or an object, not \(value.typeName)")
        }
    }

    private func limits(_ value: JSONValue, _ path: String) throws(SpecError) -> Limits {
        let object = try self.object(value, path, allowed: ["cpuTime", "wallTime", "memory", "output", "processes", "openFiles", "stack", "addressSpace"])
        var limits = Limits()
        func duration(_ key: String) throws(SpecError) -> Duration? {
            guard let item = object[key], item != .null else { return nil }
            do {
                switch item {
                case .number(let seconds): return try LimitValue.duration(seconds: seconds, context: String(seconds))
                case .string(let text): return try LimitValue.parseDuration(text)
                default: throw SpecError("\(path).\(key)", "must be a number of seconds or a string like \"500ms\", not \(item.typeName)")
                }
            } catch let error as LimitParseError {
                throw SpecError("\(path).\(key)", error.description)
            } catch {
                throw error as! SpecError
            }
        }
        func sized(_ key: String) throws(SpecError) -> UInt64? {
            guard let item = object[key], item != .null else { return nil }
            return try size(item, "\(path).\(key)")
        }
        limits.cpuTime = try duration("cpuTime")
        limits.wallTime = try duration("wallTime")
        limits.memory = try sized("memory")
        limits.output = try sized("output")
        limits.processes = try sized("processes")
        limits.openFiles = try sized("openFiles")
        limits.stack = object["stack"] == .string("unlimited") ? Limits.unlimitedStack : try sized("stack")
        limits.addressSpace = try sized("addressSpace")
        if let memory = limits.memory, memory < Limits.minimumMemory {
            throw SpecError("\(path).memory", "\(memory) bytes is below the smallest memory limit, \(LimitValue.describe(bytes: Limits.minimumMemory))")
        }
        if let processes = limits.processes, processes > Limits.maximumProcesses {
            throw SpecError("\(path).processes", "\(processes) is above the largest pids.max the kernel takes, \(Limits.maximumProcesses)")
        }
        return limits
    }

    func size(_ value: JSONValue, _ path: String) throws(SpecError) -> UInt64 {
        switch value {
        case .number(let number):
            guard number.isFinite, number >= 1, number == number.rounded(), number < 9.2e18 else {
                throw SpecError(path, "must be a whole number greater than zero")
            }
            return UInt64(number)
        case .string(let text):
            do { return try LimitValue.parseSize(text) } catch { throw SpecError(path, error.description) }
        default:
            throw SpecError(path, "must be a number or a string like \"64M\", not \(value.typeName)")
        }
    }

    // MARK: Pipes

    private func pipeNames(_ value: JSONValue?) throws(SpecError) -> [String] {
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
    private func checkPipes(_ pipes: [String], _ processes: [ProcessSpec]) throws(SpecError) {
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

    // MARK: Files

    func file(_ value: JSONValue, _ path: String) throws(SpecError) -> FileSpec {
        let object = try self.object(value, path, allowed: ["path", "content", "contentBase64", "copy", "fileId", "executable", "process"])
        guard let pathValue = object["path"] else { throw SpecError("\(path).path", "missing") }
        let relative = try relativePath(pathValue, "\(path).path")
        let sources = ["content", "contentBase64", "copy", "fileId"].filter { object[$0] != nil }
        guard sources.count == 1 else { throw SpecError(path, "must have exactly one of content, contentBase64, copy, fileId") }
        let source: FileSpec.Source
        switch sources[0] {
        case "content": source = .content(Array(try string(object["content"]!, "\(path).content").utf8))
        case "contentBase64":
            guard let bytes = Base64.decode(try string(object["contentBase64"]!, "\(path).contentBase64")) else {
                throw SpecError("\(path).contentBase64", "not valid base64")
            }
            source = .content(bytes)
        case "fileId":
            do {
                source = .stored(try FileId(try string(object["fileId"]!, "\(path).fileId")))
            } catch let error as FileId.Invalid {
                throw SpecError("\(path).fileId", error.description)
            } catch {
                throw error as! SpecError
            }
        default: source = .copy(try nonEmptyString(object["copy"]!, "\(path).copy"))
        }
        let executable = try object["executable"].map { value throws(SpecError) in try bool(value, "\(path).executable") } ?? false
        let process = try object["process"].map { value throws(SpecError) in try processName(value, "\(path).process") }
        return FileSpec(path: relative, source: source, executable: executable, process: process)
    }

    private func collected(_ value: JSONValue, _ path: String) throws(SpecError) -> CollectSpec {
        let object = try self.object(value, path, allowed: ["path", "max", "process", "store"])
        guard let pathValue = object["path"] else { throw SpecError("\(path).path", "missing") }
        let relative = try relativePath(pathValue, "\(path).path")
        let store = try object["store"].map { value throws(SpecError) in try bool(value, "\(path).store") } ?? false
        // Into the store, the bound is the store's own per-file cap unless `max` says less.
        let max = try object["max"].map { value throws(SpecError) in try size(value, "\(path).max") } ?? (store ? UInt64.max : 1 << 20)
        let process = try object["process"].map { value throws(SpecError) in try processName(value, "\(path).process") }
        return CollectSpec(path: relative, max: max, process: process, store: store)
    }

    /// A path inside a process's working directory (``SpecPath``).
    func relativePath(_ value: JSONValue, _ path: String) throws(SpecError) -> SpecPath {
        do {
            return try SpecPath(try string(value, path))
        } catch let error as SpecPath.Invalid {
            throw SpecError(path, error.description)
        } catch {
            throw error as! SpecError
        }
    }

    /// A process's name is also the name of its own working directory in a job of several:
    /// letters, digits, `.`, `_` and `-`, at most 64, not starting with a dot.
    func processName(_ value: JSONValue, _ path: String) throws(SpecError) -> String {
        let name = try nonEmptyString(value, path)
        let allowed = name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2E || byte == 0x5F || byte == 0x2D
        }
        guard allowed, name.utf8.count <= 64, !name.hasPrefix(".") else {
            throw SpecError(path, "\"\(name)\" is not a process name: letters, digits, \".\", \"_\" and \"-\", at most 64, not starting with a dot")
        }
        return name
    }

    // MARK: Types

    func object(_ value: JSONValue, _ path: String, allowed: Set<String>?) throws(SpecError) -> Object {
        guard case .object(let object) = value else { throw SpecError(path, "must be an object, not \(value.typeName)") }
        if let allowed {
            for key in object.keys.sorted() where !allowed.contains(key) {
                throw SpecError(path.isEmpty ? key : "\(path).\(key)", "unknown field")
            }
        }
        return object
    }

    func array(_ value: JSONValue, _ path: String) throws(SpecError) -> [JSONValue] {
        guard case .array(let items) = value else { throw SpecError(path, "must be an array, not \(value.typeName)") }
        return items
    }

    func string(_ value: JSONValue, _ path: String) throws(SpecError) -> String {
        guard case .string(let text) = value else { throw SpecError(path, "must be a string, not \(value.typeName)") }
        return text
    }

    func nonEmptyString(_ value: JSONValue, _ path: String) throws(SpecError) -> String {
        let text = try string(value, path)
        guard !text.isEmpty else { throw SpecError(path, "must not be empty") }
        return text
    }

    func bool(_ value: JSONValue, _ path: String) throws(SpecError) -> Bool {
        guard case .bool(let flag) = value else { throw SpecError(path, "must be true or false, not \(value.typeName)") }
        return flag
    }
}
