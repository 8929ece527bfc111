import Corral
import Foundation

/// Turns a request body into the job the server runs: parsed strictly, every limit within
/// the server's ceilings (a job asking for more is refused with the field's path), the
/// defaults filled in for what it leaves out, the server's isolation applied, and no path
/// outside the job's working directory but the host files the server allows to be read.
struct JobAdmission: Sendable {
    let ceilings: Ceilings
    let defaults: JobDefaults
    /// The isolation every process gets (nil: the server runs without isolation).
    let isolation: Isolation?
    /// Directories (symbolic links resolved) whose files a job may read; empty: none.
    var hostFiles: [String] = []
    /// Whether a job may ask for the host's network (`--allow-host-network`).
    var allowHostNetwork = false
    /// `--cpus`: the CPUs a job may name (each process's `cpus` within them).
    var cpus: CPUList?

    func admit(_ body: Data) throws(SpecError) -> JobSpec {
        let spec = try admit(JobSpec.parse(body, isolationRequired: isolation != nil))
        try bound(.job(spec))
        return spec
    }

    /// A job or a job of steps: every step's job, and every custom checker as a job of one
    /// process, admitted as a job is (paths prefixed with the step's, e.g. `steps[1].processes[0]...`).
    func admitDocument(_ body: Data) throws(SpecError) -> JobDocument {
        // The body is bounded (--max-body); the tests' ceiling is this server's, named below.
        switch try JobDocument.parse(body, isolationRequired: isolation != nil, maxTestsPerStep: .max) {
        case .job(let spec):
            let admitted = try admit(spec)
            try bound(.job(admitted))
            return .job(admitted)
        case .steps(var steps):
            for index in steps.steps.indices {
                let path = "steps[\(index)]"
                if steps.steps[index].tests.count > ceilings.stepTests {
                    throw over("\(path).tests", "\(steps.steps[index].tests.count) tests", "\(ceilings.stepTests)", "--max-tests")
                }
                let job = steps.steps[index].job
                steps.steps[index].job = try prefixed(path) { () throws(SpecError) in try admit(job) }
                if case .custom(var checker) = steps.steps[index].checker {
                    let job = try prefixed("\(path).checker") { () throws(SpecError) in
                        try admit(JobSpec(processes: [checker.process], files: checker.files))
                    }
                    checker.process = job.processes[0]
                    checker.files = job.files
                    steps.steps[index].checker = .custom(checker)
                }
            }
            try bound(.steps(steps))
            return .steps(steps)
        }
    }

    private func prefixed<T>(_ path: String, _ body: () throws(SpecError) -> T) throws(SpecError) -> T {
        do { return try body() } catch { throw SpecError(error.path.isEmpty ? path : "\(path).\(error.path)", error.message) }
    }

    private func admit(_ spec: JobSpec) throws(SpecError) -> JobSpec {
        var spec = spec
        if spec.processes.count > ceilings.jobProcesses {
            throw over("processes", "\(spec.processes.count) processes", "\(ceilings.jobProcesses)", "--max-job-processes")
        }
        if spec.workdir.keep {
            // Nobody could look at it but the server's host, and kept ones would fill its disk.
            throw SpecError("workdir.keep", "a server removes every job's working directory; collect what you need")
        }
        for index in spec.files.indices {
            if case .copy(let source) = spec.files[index].source {
                spec.files[index].source = .copy(try hostFile(source, "files[\(index)].copy"))
            }
        }
        for index in spec.processes.indices {
            let path = "processes[\(index)]"
            try confine(&spec.processes[index], path)
            if spec.processes[index].isolation?.network == .host && !allowHostNetwork {
                throw SpecError("\(path).network", "this server gives no job the host's network (it was not started with --allow-host-network)")
            }
            spec.processes[index].limits = try limits(spec.processes[index].limits, "\(path).limits")
            if let allowed = cpus, let asked = spec.processes[index].cpus, !asked.isSubset(of: allowed) {
                throw SpecError("\(path).cpus", "\"\(asked)\" is not within this server's CPUs (--cpus \(allowed))")
            }
            try capture(spec.processes[index].stdout, "\(path).stdout")
            try capture(spec.processes[index].stderr, "\(path).stderr")
            if let isolation {
                var own = isolation
                own.network = spec.processes[index].isolation?.network ?? isolation.network
                spec.processes[index].isolation = own
            }
        }
        // Into the store a file goes to disk, bounded by the store's per-file cap, not into the answer.
        for (index, collect) in spec.collect.enumerated() where !collect.store && collect.max > ceilings.output {
            throw over("collect[\(index)].max", LimitValue.describe(bytes: collect.max), LimitValue.describe(bytes: ceilings.output), "--max-output")
        }
        return spec
    }

    private func limits(_ asked: Limits, _ path: String) throws(SpecError) -> Limits {
        var limits = asked
        if let cpu = asked.cpuTime, cpu > ceilings.cpuTime {
            throw over("\(path).cpuTime", LimitValue.describe(cpu), LimitValue.describe(ceilings.cpuTime), "--max-cpu-time")
        }
        if let wall = asked.wallTime, wall > ceilings.wallTime {
            throw over("\(path).wallTime", LimitValue.describe(wall), LimitValue.describe(ceilings.wallTime), "--max-wall-time")
        }
        if let memory = asked.memory, memory > ceilings.memory {
            throw over("\(path).memory", LimitValue.describe(bytes: memory), LimitValue.describe(bytes: ceilings.memory), "--max-memory")
        }
        if let output = asked.output, output > ceilings.output {
            throw over("\(path).output", LimitValue.describe(bytes: output), LimitValue.describe(bytes: ceilings.output), "--max-output")
        }
        if let processes = asked.processes, processes > ceilings.processes {
            throw over("\(path).processes", "\(processes)", "\(ceilings.processes)", "--max-processes")
        }
        let cpuTime = asked.cpuTime ?? defaults.cpuTime
        limits.cpuTime = cpuTime
        // A wall time the job did not ask for is a default, so it may be cut to the ceiling.
        limits.wallTime = asked.wallTime ?? defaults.wallTime(forCPU: cpuTime, under: ceilings)
        limits.memory = asked.memory ?? defaults.memory
        limits.output = asked.output ?? defaults.output
        limits.processes = asked.processes ?? defaults.processes
        return limits
    }

    /// A process runs and writes only inside its working directory (every path of a spec is
    /// a ``SpecPath``); a host file reaches a job only through `files[].copy`, where
    /// ``hostFiles`` allows. Only a library caller can name a host stream file.
    private func confine(_ process: inout ProcessSpec, _ path: String) throws(SpecError) {
        for (name, stream) in [("stdin", process.stdin), ("stdout", process.stdout), ("stderr", process.stderr)] {
            if case .hostFile = stream {
                throw SpecError("\(path).\(name)", "must be a file inside the job's working directory: this server reads and writes no host file")
            }
        }
    }

    /// A host file a job may read: under one of ``hostFiles`` once symbolic links are
    /// resolved (the resolved path is what is read). The same answer for a file that is not
    /// there and one outside, so a job cannot probe the host.
    private func hostFile(_ file: String, _ path: String) throws(SpecError) -> String {
        guard !hostFiles.isEmpty else {
            throw SpecError(path, "this server reads no host file (it allows those under the directories given with --host-files)")
        }
        guard file.hasPrefix("/") else { throw SpecError(path, "must be an absolute path") }
        let resolved: String? = realpath(file, nil).map { real in
            defer { free(real) }
            return String(cString: real)
        }
        guard let resolved, hostFiles.contains(where: { resolved.hasPrefix($0 == "/" ? "/" : $0 + "/") }) else {
            throw SpecError(path, "\(file): no such file under this server's --host-files directories")
        }
        return resolved
    }

    private func capture(_ stream: StreamSpec, _ path: String) throws(SpecError) {
        if case .capture(let max, _) = stream, max > ceilings.output {
            throw over("\(path).capture.max", LimitValue.describe(bytes: max), LimitValue.describe(bytes: ceilings.output), "--max-output")
        }
    }

    private func over(_ path: String, _ asked: String, _ ceiling: String, _ flag: String) -> SpecError {
        SpecError(path, "\(asked) is over this server's ceiling of \(ceiling) (\(flag))")
    }
}
