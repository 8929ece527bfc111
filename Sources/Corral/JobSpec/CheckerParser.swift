/// A step's `checker`: `"exact"`, `"lines"`, `"tokens"`, `"float"`, or an object:
/// `{"type": "float", "absolute": 1e-6, "relative": 1e-6}`, or
/// `{"type": "custom", "args": [...], ...a process's fields..., "files": [...]}`.
extension StepsParser {
    func checker(_ value: JSONValue, _ path: String, earlier: [StepSpec]) throws(SpecError) -> CheckerSpec {
        if case .string(let name) = value { return .builtin(try builtin(name, path, nil)) }
        var fields = try base.object(value, path, allowed: nil)
        guard let typeValue = fields["type"] else { throw SpecError("\(path).type", "missing: exact, lines, tokens, float or custom") }
        let type = try base.string(typeValue, "\(path).type")
        fields["type"] = nil
        guard type == "custom" else {
            let allowed: Set<String> = type == "float" ? ["absolute", "relative"] : []
            _ = try base.object(.object(fields), path, allowed: allowed)
            return .builtin(try builtin(type, "\(path).type", fields))
        }
        var files: [FileSpec] = []
        if let filesValue = fields["files"] {
            for (index, item) in try base.array(filesValue, "\(path).files").enumerated() {
                let itemPath = "\(path).files[\(index)]"
                if case .object(let entry) = item, entry["fromStep"] != nil {
                    files.append(try stepFile(entry, itemPath, earlier: earlier))
                } else {
                    files.append(try base.file(item, itemPath))
                }
                if files.last?.process != nil { throw SpecError("\(itemPath).process", "a checker's files go to the checker") }
            }
            fields["files"] = nil
        }
        // Its input, output and answer are placed in its own directory and named to it
        // relative to it: run in a `dir` below that, it could find none of them.
        if fields["dir"] != nil {
            throw SpecError("\(path).dir", "not for a checker: it runs in its own directory, where its input, output and answer are")
        }
        for key in ["stdin", "stdout", "fds", "name"] where fields[key] != nil {
            throw SpecError("\(path).\(key)", "not for a checker (it reads its input, output and answer as files)")
        }
        var process = try base.process(.object(fields), path, index: 0)
        process.name = "checker"
        if case .capture = process.stderr {} else {
            throw SpecError("\(path).stderr", "a checker's stderr is its comment: leave it captured")
        }
        return .custom(CustomCheckerSpec(process: process, files: files))
    }

    private func builtin(_ name: String, _ path: String, _ fields: SpecParser.Object?) throws(SpecError) -> BuiltinChecker {
        switch name {
        case "exact": return .exact
        case "lines": return .lines
        case "tokens": return .tokens
        case "float":
            func tolerance(_ key: String) throws(SpecError) -> Double {
                guard let item = fields?[key] else { return BuiltinChecker.defaultTolerance }
                guard case .number(let value) = item, value.isFinite, value >= 0 else {
                    throw SpecError("\(path.replacingSuffix(".type")).\(key)", "must be a number of at least 0")
                }
                return value
            }
            return .float(absolute: try tolerance("absolute"), relative: try tolerance("relative"))
        default:
            throw SpecError(path, "unknown checker \"\(name)\": exact, lines, tokens, float or custom")
        }
    }
}

private extension String {
    func replacingSuffix(_ suffix: String) -> String { hasSuffix(suffix) ? String(dropLast(suffix.count)) : self }
}
