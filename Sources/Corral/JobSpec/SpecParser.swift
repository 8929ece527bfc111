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
        // Each entry reads the whole file again (and, into the store, hashes and writes it),
        // after the runs and outside their wall times: a few, and each file once.
        let collectValues = try array(object["collect"] ?? .array([]), "collect")
        guard collectValues.count <= JobSpec.maxCollect else {
            throw SpecError("collect", "\(collectValues.count) entries, more than the \(JobSpec.maxCollect) a job may collect")
        }
        var collect: [CollectSpec] = []
        var collecting: [String: Int] = [:]
        for (index, value) in collectValues.enumerated() {
            let entry = try collected(value, "collect[\(index)]")
            // Once into the report and once into the store is allowed (a peek at what was stored).
            let key = (entry.process ?? "") + "\u{0}" + entry.path.description + (entry.store ? "\u{0}store" : "")
            if let first = collecting[key] {
                throw SpecError("collect[\(index)].path", "\"\(entry.path)\" is already collected by collect[\(first)]\(entry.store ? " into the store" : "")")
            }
            collecting[key] = index
            collect.append(entry)
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
}
