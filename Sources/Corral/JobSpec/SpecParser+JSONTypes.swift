/// The JSON value checks of the spec parser: each names the path of a value of the wrong type.
extension SpecParser {
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
