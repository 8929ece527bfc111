/// What a job spec's JSON holds: one job (``JobSpec``), or a list of steps run in order
/// (``StepsSpec``: compile, then test). ``JobDocument/parse(_:isolationRequired:)`` tells
/// them apart by the top-level `steps`.
public enum JobDocument: Sendable, Hashable {
    case job(JobSpec)
    case steps(StepsSpec)
}

/// Steps run one after another, each shaped like a job of its own; a later step takes the
/// files an earlier one produced by reference (``StepFileReference``), never through the
/// client.
public struct StepsSpec: Sendable, Hashable {
    public var steps: [StepSpec]

    /// The most tests a step of a parsed spec may have unless the parser is told otherwise
    /// (`corral serve --max-tests`): each test is a run, and its report is kept until the job ends.
    public static let defaultMaxTestsPerStep = 1000

    /// The most steps a job may have (every parser, every server): a job keeps each step's
    /// directories (a tmpfs mount as root, a descriptor) until it ends, so the steps bound
    /// what one client's job holds of the host's mounts (`fs.mount-max` is the whole mount
    /// namespace's) and of the runner's descriptors.
    public static let maxSteps = 64

    public init(steps: [StepSpec]) {
        self.steps = steps
    }
}

public struct StepSpec: Sendable, Hashable {
    /// Unique among the steps; what a later step's `fromStep` names.
    public var name: String
    /// The step's processes, pipes, files (``FileSpec/Source/fromStep(_:)`` too) and collect.
    public var job: JobSpec
    /// Go on to the next step even when this one does not end `ok`.
    public var continueOnFailure: Bool
    /// Run the processes once per test (one test after another); empty: once.
    public var tests: [TestSpec]
    /// Stop at the first test whose verdict is not `accepted` (the rest are not run).
    public var stopOnFirstFailure: Bool
    /// How a test's output is judged (not used in an interactive step: the interactor decides).
    public var checker: CheckerSpec
    /// In a step of several processes with tests: the process that gets each test's input
    /// and answer as files (`input`, `answer`) and whose exit code is the verdict (testlib's).
    public var interactor: String?

    public init(name: String, job: JobSpec, continueOnFailure: Bool = false, tests: [TestSpec] = [],
                stopOnFirstFailure: Bool = false, checker: CheckerSpec = .builtin(.lines), interactor: String? = nil) {
        self.name = name
        self.job = job
        self.continueOnFailure = continueOnFailure
        self.tests = tests
        self.stopOnFirstFailure = stopOnFirstFailure
        self.checker = checker
        self.interactor = interactor
    }
}

/// One test of a step: the tested process's stdin and the answer its output is judged against.
public struct TestSpec: Sendable, Hashable {
    /// Default: its position from 1 (`"1"`, `"2"`, ...).
    public var name: String
    public var input: TestData
    /// Nil: an empty answer (a custom checker or an interactor may need none).
    public var answer: TestData?

    public init(name: String, input: TestData, answer: TestData? = nil) {
        self.name = name
        self.input = input
        self.answer = answer
    }
}

/// Where a test's input or answer comes from.
public enum TestData: Sendable, Hashable {
    /// These bytes (`{"content": TEXT}` or `{"contentBase64": B64}`).
    case content([UInt8])
    /// A file an earlier step produced (`{"fromStep", "fromPath", "fromProcess"?}`).
    case fromStep(StepFileReference)
    /// A file of the file store (`{"fileId": ID}`): given to ``StepsRunner`` through its
    /// ``StoredFiles``; without one the job is refused.
    case fileId(String)
}

/// A file an earlier step left in a process's directory: opened beneath that directory's
/// descriptor (``DirectoryHandle``), never through a link, only a regular file with one name.
public struct StepFileReference: Sendable, Hashable, Codable {
    public var step: String
    /// Whose directory in that step: required when it had more than one process.
    public var process: String?
    public var path: SpecPath

    public init(step: String, process: String? = nil, path: SpecPath) {
        self.step = step
        self.process = process
        self.path = path
    }
}

/// How a test's output is judged.
public enum CheckerSpec: Sendable, Hashable {
    case builtin(BuiltinChecker)
    /// A program of its own, run isolated as any process (``CustomCheckerSpec``).
    case custom(CustomCheckerSpec)
}

/// A checker program, testlib's way: run as `ARGS... input output answer` in its own
/// directory, where those three are read-only files; exit 0 accepted, 1 wrong answer,
/// 2 presentation error, 3 (or anything else) a checker error; its stderr (capped) the comment.
public struct CustomCheckerSpec: Sendable, Hashable {
    public var process: ProcessSpec
    /// Put in its directory before it runs (its program, typically `fromStep`).
    public var files: [FileSpec]

    public init(process: ProcessSpec, files: [FileSpec] = []) {
        self.process = process
        self.files = files
    }
}

/// The file store's side of ``TestData/fileId(_:)`` and a `files[]` entry's `fileId`:
/// opens a stored file read-only (its descriptor, which the caller closes).
public protocol StoredFiles: Sendable {
    func open(id: String) throws(CorralError) -> Int32
}
