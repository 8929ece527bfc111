#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

extension JobDocument {
    /// Parses a job spec's JSON: a document with a top-level `steps` is a ``StepsSpec``,
    /// any other a ``JobSpec`` (``JobSpec/parse(_:isolationRequired:)``). Everything is
    /// checked before anything runs, and an error names the field (`steps[1].tests[0].stdin`).
    /// `maxTestsPerStep`: a step with more tests is refused (``StepsSpec/defaultMaxTestsPerStep``).
    public static func parse(_ data: Data, isolationRequired: Bool = false,
                             maxTestsPerStep: Int = StepsSpec.defaultMaxTestsPerStep) throws(SpecError) -> JobDocument {
        let root: JSONValue
        do {
            root = try JSONReader.read(Array(data))
        } catch {
            throw SpecError("", "not valid JSON: \(error.message) at byte \(error.offset)")
        }
        let base = SpecParser(isolationRequired: isolationRequired)
        if case .object(let object) = root, object["steps"] != nil {
            return .steps(try StepsParser(base: base, maxTests: maxTestsPerStep).steps(root))
        }
        return .job(try base.job(root))
    }
}

/// Reads `{"steps": [...]}`: each step a job's fields (read by ``SpecParser``) plus the
/// step's own; a `fromStep` must name an earlier step and one of its processes.
struct StepsParser {
    let base: SpecParser
    /// The most tests a step may have.
    var maxTests = StepsSpec.defaultMaxTestsPerStep
    static let stepKeys: Set<String> = ["name", "continueOnFailure", "tests", "stopOnFirstFailure", "checker", "interactor"]
    static let jobKeys: Set<String> = ["processes", "pipes", "files", "collect", "cpus"]

    func steps(_ root: JSONValue) throws(SpecError) -> StepsSpec {
        let object = try base.object(root, "", allowed: ["steps"])
        let items = try base.array(object["steps"]!, "steps")
        guard !items.isEmpty else { throw SpecError("steps", "must hold at least one step") }
        guard items.count <= StepsSpec.maxSteps else {
            throw SpecError("steps", "\(items.count) steps, more than the \(StepsSpec.maxSteps) a job may have (split them into several jobs)")
        }
        var steps: [StepSpec] = []
        for (index, item) in items.enumerated() {
            steps.append(try step(item, "steps[\(index)]", earlier: steps))
        }
        return StepsSpec(steps: steps)
    }

    private func step(_ value: JSONValue, _ path: String, earlier: [StepSpec]) throws(SpecError) -> StepSpec {
        var fields = try base.object(value, path, allowed: Self.stepKeys.union(Self.jobKeys))
        guard let nameValue = fields["name"] else { throw SpecError("\(path).name", "missing: a step needs a name") }
        let name = try base.processName(nameValue, "\(path).name")
        if earlier.contains(where: { $0.name == name }) { throw SpecError("\(path).name", "\"\(name)\" is already the name of a step") }
        // Files taken from earlier steps are read here; the rest of the job by the job's parser.
        var references: [(Int, FileSpec)] = []
        if let filesValue = fields["files"] {
            var plain: [JSONValue] = []
            for (index, item) in try base.array(filesValue, "\(path).files").enumerated() {
                if case .object(let entry) = item, entry["fromStep"] != nil {
                    references.append((index, try stepFile(entry, "\(path).files[\(index)]", earlier: earlier)))
                } else {
                    plain.append(item)
                }
            }
            fields["files"] = .array(plain)
        }
        let jobFields = fields.filter { Self.jobKeys.contains($0.key) }
        var job = try prefixed(path) { () throws(SpecError) in try base.job(.object(jobFields)) }
        for (index, file) in references { job.files.insert(file, at: min(index, job.files.count)) }
        do { try job.checkProcessReferences() } catch { throw SpecError("\(path).\(error.path)", error.message) }

        var step = StepSpec(name: name, job: job)
        if let item = fields["continueOnFailure"] { step.continueOnFailure = try base.bool(item, "\(path).continueOnFailure") }
        if let item = fields["stopOnFirstFailure"] { step.stopOnFirstFailure = try base.bool(item, "\(path).stopOnFirstFailure") }
        if let item = fields["interactor"] {
            let interactor = try base.processName(item, "\(path).interactor")
            guard job.processes.contains(where: { $0.name == interactor }) else {
                throw SpecError("\(path).interactor", "no process of this step is named \"\(interactor)\"")
            }
            step.interactor = interactor
        }
        if let item = fields["tests"] {
            let items = try base.array(item, "\(path).tests")
            guard items.count <= maxTests else {
                throw SpecError("\(path).tests", "\(items.count) tests, more than the \(maxTests) a step may have (split them into several steps or jobs)")
            }
            for (index, test) in items.enumerated() {
                step.tests.append(try self.test(test, "\(path).tests[\(index)]", index: index, earlier: earlier))
            }
        }
        if let item = fields["checker"] { step.checker = try checker(item, "\(path).checker", earlier: earlier) }
        try checkTested(step, path, given: fields)
        return step
    }

    /// What a step with tests must be: one process whose stdin and stdout the tests take, or
    /// an interactor and its peers; `collect` is for steps without tests.
    private func checkTested(_ step: StepSpec, _ path: String, given fields: SpecParser.Object) throws(SpecError) {
        guard !step.tests.isEmpty else {
            for key in ["stopOnFirstFailure", "checker", "interactor"] where fields[key] != nil {
                throw SpecError("\(path).\(key)", "goes with \"tests\"")
            }
            return
        }
        if !step.job.collect.isEmpty { throw SpecError("\(path).collect", "a step with tests collects no files (run a step after it)") }
        if step.interactor != nil {
            if fields["checker"] != nil { throw SpecError("\(path).checker", "in an interactive step the interactor's exit code is the verdict") }
            return
        }
        guard step.job.processes.count == 1 else {
            throw SpecError("\(path).processes", "a step with tests has one process (or names its \"interactor\")")
        }
        let process = step.job.processes[0]
        if process.stdin != .null { throw SpecError("\(path).processes[0].stdin", "each test gives the stdin of a step with tests") }
        if process.stdout != .capture(max: StreamSpec.defaultCaptureMax) {
            throw SpecError("\(path).processes[0].stdout", "each test takes the stdout of a step with tests (bound it with limits.output)")
        }
    }

    private func test(_ value: JSONValue, _ path: String, index: Int, earlier: [StepSpec]) throws(SpecError) -> TestSpec {
        let fields = try base.object(value, path, allowed: ["name", "stdin", "answer"])
        let name = try fields["name"].map { item throws(SpecError) in try base.processName(item, "\(path).name") } ?? String(index + 1)
        guard let stdin = fields["stdin"] else { throw SpecError("\(path).stdin", "missing") }
        let input = try data(stdin, "\(path).stdin", earlier: earlier)
        let answer = try fields["answer"].map { item throws(SpecError) in try data(item, "\(path).answer", earlier: earlier) }
        return TestSpec(name: name, input: input, answer: answer)
    }

    private func data(_ value: JSONValue, _ path: String, earlier: [StepSpec]) throws(SpecError) -> TestData {
        let fields = try base.object(value, path, allowed: ["content", "contentBase64", "fileId", "fromStep", "fromPath", "fromProcess"])
        let sources = ["content", "contentBase64", "fileId", "fromStep"].filter { fields[$0] != nil }
        guard sources.count == 1 else { throw SpecError(path, "must have exactly one of content, contentBase64, fileId, fromStep") }
        if sources[0] != "fromStep" {
            for key in ["fromPath", "fromProcess"] where fields[key] != nil { throw SpecError("\(path).\(key)", "goes with \"fromStep\"") }
        }
        switch sources[0] {
        case "content": return .content(Array(try base.string(fields["content"]!, "\(path).content").utf8))
        case "contentBase64":
            guard let bytes = Base64.decode(try base.string(fields["contentBase64"]!, "\(path).contentBase64")) else {
                throw SpecError("\(path).contentBase64", "not valid base64")
            }
            return .content(bytes)
        case "fileId":
            let id = try base.nonEmptyString(fields["fileId"]!, "\(path).fileId")
            guard id.utf8.count <= 128, id.utf8.allSatisfy({ $0 < 0x80 && (isalnum(Int32($0)) != 0 || $0 == 0x2D || $0 == 0x5F) }) else {
                throw SpecError("\(path).fileId", "not a file id (letters, digits, \"-\" and \"_\", at most 128)")
            }
            return .fileId(id)
        default: return .fromStep(try reference(fields, path, earlier: earlier))
        }
    }

    /// `{"path", "fromStep", "fromPath", "fromProcess"?, "executable"?, "process"?}`.
    func stepFile(_ fields: SpecParser.Object, _ path: String, earlier: [StepSpec]) throws(SpecError) -> FileSpec {
        _ = try base.object(.object(fields), path, allowed: ["path", "fromStep", "fromPath", "fromProcess", "executable", "process"])
        guard let pathValue = fields["path"] else { throw SpecError("\(path).path", "missing") }
        let target = try base.relativePath(pathValue, "\(path).path")
        let executable = try fields["executable"].map { item throws(SpecError) in try base.bool(item, "\(path).executable") } ?? false
        let process = try fields["process"].map { item throws(SpecError) in try base.processName(item, "\(path).process") }
        return FileSpec(path: target, source: .fromStep(try reference(fields, path, earlier: earlier)), executable: executable, process: process)
    }

    private func reference(_ fields: SpecParser.Object, _ path: String, earlier: [StepSpec]) throws(SpecError) -> StepFileReference {
        let stepName = try base.processName(fields["fromStep"]!, "\(path).fromStep")
        guard let source = earlier.first(where: { $0.name == stepName }) else {
            throw SpecError("\(path).fromStep", "no earlier step is named \"\(stepName)\"")
        }
        guard let fromPath = fields["fromPath"] else { throw SpecError("\(path).fromPath", "missing") }
        let relative = try base.relativePath(fromPath, "\(path).fromPath")
        var process: String?
        if let item = fields["fromProcess"] {
            let name = try base.processName(item, "\(path).fromProcess")
            guard source.job.processes.contains(where: { $0.name == name }) else {
                throw SpecError("\(path).fromProcess", "step \"\(stepName)\" has no process named \"\(name)\"")
            }
            process = name
        } else if source.job.processes.count > 1 {
            throw SpecError("\(path).fromProcess", "missing: step \"\(stepName)\" has more than one process")
        }
        return StepFileReference(step: stepName, process: process, path: relative)
    }

    private func prefixed<T>(_ path: String, _ body: () throws(SpecError) -> T) throws(SpecError) -> T {
        do { return try body() } catch { throw SpecError(error.path.isEmpty ? path : "\(path).\(error.path)", error.message) }
    }
}
