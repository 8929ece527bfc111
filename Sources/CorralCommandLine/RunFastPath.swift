import Corral

/// `corral run` without ArgumentParser, for the command lines judges send on every run.
///
/// ArgumentParser builds its picture of a command by reflection (`Mirror`, type lookups by
/// mangled name, protocol-conformance scans) at every start: about 19 million instructions
/// for `run`'s forty options, most of what `corral run -- /bin/true` cost. This parser knows
/// the same option names (``RunCommand`` is the definition; a test checks that both give the
/// same ``RunArguments`` for the same words) but takes only the plain forms: `--name value`,
/// `--name=value`, flags, and the program after `--`. Anything else — `--help`, an unknown or
/// repeated option, a value that starts with a dash, a program not after `--`, a line that
/// does not validate — returns nil, and ArgumentParser parses the line as before, with its
/// own messages.
public enum RunFastPath {
    /// The option names this parser knows; ``assign(_:_:to:)`` and ``flags`` say what each does.
    /// (A table of key paths read better, but instantiating forty key paths at every start
    /// cost 0.8 million instructions, an eighth of a whole `corral run`.)
    public static let optionNames: Set<String> = Set(valueOptions + flags)

    private static let flags = ["--require-cgroup", "--inherit-env", "--quiet", "--isolate"]
    private static let valueOptions = [
        "--cpu-time", "--wall-time", "--memory", "--output", "--open-files", "--stack", "--processes",
        "--address-space", "--containment", "--cgroup-parent", "--user-range", "--stdin", "--stdout", "--stderr",
        "--dir", "--env", "--report", "--network", "--user", "--bind", "--tmpfs", "--seccomp", "--seccomp-policy",
        "--spec", "--file-store", "--file-store-max", "--stdout-max", "--stderr-max", "--stdout-on-limit",
        "--stderr-on-limit", "--ignore-signal", "--file", "--collect", "--cpus",
    ]
    /// Options that may be given more than once, each adding a value.
    private static let lists = ["--env", "--bind", "--tmpfs", "--file", "--collect", "--ignore-signal"]

    private static func setFlag(_ name: String, in result: inout RunArguments) -> Bool {
        switch name {
        case "--require-cgroup": result.containmentOptions.requireCgroup = true
        case "--inherit-env": result.inheritEnvironment = true
        case "--quiet": result.quiet = true
        case "--isolate": result.isolate = true
        default: return false
        }
        return true
    }

    /// Sets option `name` to `value`; false when the name or the value is not one this parser takes.
    private static func assign(_ name: String, _ value: String, to result: inout RunArguments) -> Bool {
        switch name {
        case "--cpu-time": result.limitOptions.cpuTime = value
        case "--wall-time": result.limitOptions.wallTime = value
        case "--memory": result.limitOptions.memory = value
        case "--output": result.limitOptions.output = value
        case "--open-files": result.limitOptions.openFiles = value
        case "--stack": result.limitOptions.stack = value
        case "--processes": result.limitOptions.processes = value
        case "--address-space": result.limitOptions.addressSpace = value
        case "--containment":
            guard let mode = RunnerConfiguration.ContainmentPreference(rawValue: value) else { return false }
            result.containmentOptions.containment = mode
        case "--cgroup-parent": result.containmentOptions.cgroupParent = value
        case "--user-range": result.userRangeOption.userRange = value
        case "--stdin": result.stdin = value
        case "--stdout": result.stdout = value
        case "--stderr": result.stderr = value
        case "--dir": result.dir = value
        case "--env": result.environment.append(value)
        case "--report": result.report = value
        case "--network":
            guard let mode = Isolation.Network(rawValue: value) else { return false }
            result.network = mode
        case "--user": result.user = value
        case "--bind": result.bind.append(value)
        case "--tmpfs": result.tmpfs.append(value)
        case "--seccomp": result.seccomp = value
        case "--seccomp-policy": result.seccompPolicy = value
        case "--spec": result.spec = value
        case "--file-store": result.fileStore = value
        case "--file-store-max": result.fileStoreMax = value
        case "--stdout-max": result.stdoutMax = value
        case "--stderr-max": result.stderrMax = value
        case "--stdout-on-limit": result.stdoutOnLimit = value
        case "--stderr-on-limit": result.stderrOnLimit = value
        case "--ignore-signal": result.ignoreSignals.append(value)
        case "--file": result.files.append(value)
        case "--collect": result.collect.append(value)
        case "--cpus": result.cpus = value
        default: return false
        }
        return true
    }

    /// The arguments of `corral run …` (the words after the program name, starting with
    /// `run`), or nil when ArgumentParser should parse them.
    public static func parse(_ words: [String]) -> RunArguments? {
        guard words.first == "run" else { return nil }
        var result = RunArguments()
        var seen: [String] = []
        var index = 1
        while index < words.count {
            let word = words[index]
            if word == "--" {
                result.command = Array(words[index...])
                return result
            }
            guard word.hasPrefix("--") else { return nil }
            var name = word
            var inline: String?
            if let equals = word.firstIndex(of: "=") {
                name = String(word[..<equals])
                inline = String(word[word.index(after: equals)...])
            }
            index += 1
            if flags.contains(name) {
                guard inline == nil, !seen.contains(name) else { return nil }
                seen.append(name)
                guard setFlag(name, in: &result) else { return nil }
                continue
            }
            guard valueOptions.contains(name) else { return nil }
            let value: String
            if let inline {
                value = inline
            } else {
                guard index < words.count else { return nil }
                value = words[index]
                index += 1
            }
            guard value == "-" || !value.hasPrefix("-") else { return nil }
            if !lists.contains(name) {
                guard !seen.contains(name) else { return nil }
                seen.append(name)
            }
            guard assign(name, value, to: &result) else { return nil }
        }
        // No program after `--`: ArgumentParser says what is missing (or runs a --spec).
        return result.spec == nil ? nil : result
    }
}
