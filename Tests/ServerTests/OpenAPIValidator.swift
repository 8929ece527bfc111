import Foundation

/// Checks JSON values against the schemas of `Docs/openapi.json`: the subset of JSON Schema
/// the document uses (type, or a list of types; properties, required, additionalProperties;
/// items, minItems; enum; anyOf; $ref to components). Returns every mismatch, with its path.
struct OpenAPIDocument: @unchecked Sendable { // immutable after load
    let root: [String: Any]

    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func load() throws -> OpenAPIDocument {
        let data = try Data(contentsOf: repositoryRoot.appendingPathComponent("Docs/openapi.json"))
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ValidationFailure("Docs/openapi.json is not a JSON object")
        }
        return OpenAPIDocument(root: root)
    }

    var paths: [String: [String: Any]] { root["paths"] as? [String: [String: Any]] ?? [:] }

    /// The schema the document gives for `method path` answering `status` (JSON bodies only).
    func responseSchema(_ method: String, _ path: String, status: Int) throws -> [String: Any] {
        guard let operation = paths[path]?[method.lowercased()] as? [String: Any] else {
            throw ValidationFailure("no \(method) \(path) in the document")
        }
        guard let response = (operation["responses"] as? [String: Any])?[String(status)] as? [String: Any] else {
            throw ValidationFailure("\(method) \(path): status \(status) is not documented")
        }
        guard let content = response["content"] as? [String: Any],
              let media = (content["application/json"] ?? content["text/plain"]) as? [String: Any],
              let schema = media["schema"] as? [String: Any] else {
            throw ValidationFailure("\(method) \(path) \(status): no schema")
        }
        return schema
    }

    /// Documented response headers of `method path` answering `status`.
    func responseHeaders(_ method: String, _ path: String, status: Int) -> [String] {
        let operation = paths[path]?[method.lowercased()] as? [String: Any]
        let response = (operation?["responses"] as? [String: Any])?[String(status)] as? [String: Any]
        return ((response?["headers"] as? [String: Any]) ?? [:]).keys.map { $0.lowercased() }
    }

    func schema(named name: String) throws -> [String: Any] {
        guard let schemas = (root["components"] as? [String: Any])?["schemas"] as? [String: Any],
              let schema = schemas[name] as? [String: Any] else { throw ValidationFailure("no schema \(name)") }
        return schema
    }

    func validate(_ value: Any, against schema: [String: Any], at path: String = "$") -> [String] {
        if let reference = schema["$ref"] as? String {
            let name = String(reference.split(separator: "/").last ?? "")
            guard let resolved = try? self.schema(named: name) else { return ["\(path): unresolved \(reference)"] }
            return validate(value, against: resolved, at: path)
        }
        if let options = schema["anyOf"] as? [[String: Any]] {
            let results = options.map { validate(value, against: $0, at: path) }
            if results.contains(where: \.isEmpty) { return [] }
            return ["\(path): matches none of anyOf (\(results.map { $0.joined(separator: "; ") }.joined(separator: " | ")))"]
        }
        var problems: [String] = []
        if let type = schema["type"] {
            let types = (type as? [String]) ?? [type as? String ?? ""]
            guard types.contains(where: { Self.matches(value, $0) }) else {
                return ["\(path): expected \(types.joined(separator: " or ")), got \(Self.typeName(value))"]
            }
        }
        if let allowed = schema["enum"] as? [String] {
            if let text = value as? String, !allowed.contains(text) { problems.append("\(path): \"\(text)\" not in \(allowed)") }
        }
        if let object = value as? [String: Any], !(value is NSNull) {
            let properties = schema["properties"] as? [String: [String: Any]] ?? [:]
            for key in schema["required"] as? [String] ?? [] where object[key] == nil {
                problems.append("\(path): missing \(key)")
            }
            for (key, item) in object {
                if let property = properties[key] {
                    problems += validate(item, against: property, at: "\(path).\(key)")
                } else if let additional = schema["additionalProperties"] as? [String: Any] {
                    problems += validate(item, against: additional, at: "\(path).\(key)")
                } else if (schema["additionalProperties"] as? Bool) == false {
                    problems.append("\(path): undocumented field \(key)")
                }
            }
        }
        if let array = value as? [Any] {
            if let minimum = schema["minItems"] as? Int, array.count < minimum { problems.append("\(path): fewer than \(minimum) items") }
            if let items = schema["items"] as? [String: Any] {
                for (index, item) in array.enumerated() { problems += validate(item, against: items, at: "\(path)[\(index)]") }
            }
        }
        return problems
    }

    static func matches(_ value: Any, _ type: String) -> Bool {
        switch type {
        case "null": return value is NSNull
        case "object": return value is [String: Any]
        case "array": return value is [Any]
        case "string": return value is String
        case "boolean": return isBoolean(value)
        case "integer": return isNumber(value) && !isBoolean(value) && (value as! NSNumber).doubleValue.rounded() == (value as! NSNumber).doubleValue
        case "number": return isNumber(value) && !isBoolean(value)
        default: return false
        }
    }

    static func isNumber(_ value: Any) -> Bool { value is NSNumber }

    static func isBoolean(_ value: Any) -> Bool {
        // JSONSerialization makes booleans NSNumbers of type "c" (and numbers never).
        guard let number = value as? NSNumber else { return false }
        return String(cString: number.objCType) == "c"
    }

    static func typeName(_ value: Any) -> String {
        if value is NSNull { return "null" }
        if isBoolean(value) { return "boolean" }
        if value is NSNumber { return "number" }
        if value is String { return "string" }
        if value is [Any] { return "array" }
        if value is [String: Any] { return "object" }
        return "\(type(of: value))"
    }
}

struct ValidationFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
