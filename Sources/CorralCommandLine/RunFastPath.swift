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
    private enum Kind {
        case value(WritableKeyPath<RunArguments, String?>)
        case list(WritableKeyPath<RunArguments, [String]>)
        case flag(WritableKeyPath<RunArguments, Bool>)
        case text(WritableKeyPath<RunArguments, String>)
        case containment
        case network
    }

    private static var options: [String: Kind] { [
        "--cpu-time": .value(\.limitOptions.cpuTime),
        "--wall-time": .value(\.limitOptions.wallTime),
        "--memory": .value(\.limitOptions.memory),
        "--output": .value(\.limitOptions.output),
        "--open-files": .value(\.limitOptions.openFiles),
        "--stack": .value(\.limitOptions.stack),
        "--processes": .value(\.limitOptions.processes),
        "--address-space": .value(\.limitOptions.addressSpace),
        "--containment": .containment,
        "--cgroup-parent": .value(\.containmentOptions.cgroupParent),
        "--require-cgroup": .flag(\.containmentOptions.requireCgroup),
        "--user-range": .value(\.userRangeOption.userRange),
        "--stdin": .value(\.stdin),
        "--stdout": .value(\.stdout),
        "--stderr": .value(\.stderr),
        "--dir": .value(\.dir),
        "--env": .list(\.environment),
        "--inherit-env": .flag(\.inheritEnvironment),
        "--report": .value(\.report),
        "--quiet": .flag(\.quiet),
        "--isolate": .flag(\.isolate),
        "--network": .network,
        "--user": .value(\.user),
        "--bind": .list(\.bind),
        "--tmpfs": .list(\.tmpfs),
        "--seccomp": .value(\.seccomp),
        "--seccomp-policy": .value(\.seccompPolicy),
        "--spec": .value(\.spec),
        "--file-store": .value(\.fileStore),
        "--file-store-max": .text(\.fileStoreMax),
        "--stdout-max": .value(\.stdoutMax),
        "--stderr-max": .value(\.stderrMax),
        "--file": .list(\.files),
        "--collect": .list(\.collect),
        "--cpus": .value(\.cpus),
    ] }

    /// The option names this parser knows (for the test that compares them with
    /// ``RunCommand``'s).
    public static var optionNames: Set<String> { Set(options.keys) }

    /// The arguments of `corral run …` (the words after the program name, starting with
    /// `run`), or nil when ArgumentParser should parse them.
    public static func parse(_ words: [String]) -> RunArguments? {
        guard words.first == "run" else { return nil }
        let options = self.options
        var result = RunArguments()
        var seen: Set<String> = []
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
            guard let kind = options[name] else { return nil }
            index += 1
            if case .flag(let path) = kind {
                guard inline == nil, seen.insert(name).inserted else { return nil }
                result[keyPath: path] = true
                continue
            }
            let value: String
            if let inline {
                value = inline
            } else {
                guard index < words.count else { return nil }
                value = words[index]
                index += 1
            }
            guard value == "-" || !value.hasPrefix("-") else { return nil }
            switch kind {
            case .value(let path):
                guard seen.insert(name).inserted else { return nil }
                result[keyPath: path] = value
            case .text(let path):
                guard seen.insert(name).inserted else { return nil }
                result[keyPath: path] = value
            case .list(let path):
                result[keyPath: path].append(value)
            case .containment:
                guard seen.insert(name).inserted, let mode = RunnerConfiguration.ContainmentPreference(rawValue: value) else { return nil }
                result.containmentOptions.containment = mode
            case .network:
                guard seen.insert(name).inserted, let mode = Isolation.Network(rawValue: value) else { return nil }
                result.network = mode
            case .flag:
                return nil
            }
        }
        // No program after `--`: ArgumentParser says what is missing (or runs a --spec).
        return result.spec == nil ? nil : result
    }
}
