/// The spec's files and collected files, and the paths and names they hold.
extension SpecParser {
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

    func collected(_ value: JSONValue, _ path: String) throws(SpecError) -> CollectSpec {
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
}
