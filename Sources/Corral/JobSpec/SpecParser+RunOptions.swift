/// The per-process options a judge sets on how a run behaves: what a capture does past its
/// cap, and which signals the program starts with ignored.
extension SpecParser {
    /// `{"capture": {"max": S, "onLimit": "kill" | "truncate"}}`, `{"capture": true}`.
    func capture(_ value: JSONValue, _ path: String) throws(SpecError) -> StreamSpec {
        if case .bool(true) = value { return .capture(max: StreamSpec.defaultCaptureMax) }
        let fields = try object(value, path, allowed: ["max", "onLimit"])
        let max = try fields["max"].map { value throws(SpecError) in try size(value, "\(path).max") } ?? StreamSpec.defaultCaptureMax
        var onLimit = OutputLimitAction.kill
        if let item = fields["onLimit"] {
            let text = try string(item, "\(path).onLimit")
            guard let action = OutputLimitAction(rawValue: text) else {
                throw SpecError("\(path).onLimit", "must be \"kill\" (the default: past the cap the process is killed, output-limit) "
                                + "or \"truncate\" (the capture is cut and the process goes on), not \"\(text)\"")
            }
            onLimit = action
        }
        return .capture(max: max, onLimit: onLimit)
    }

    /// `"ignoreSignals": ["SIGPIPE", ...]`.
    func ignoredSignals(_ value: JSONValue, _ path: String) throws(SpecError) -> SignalSet {
        var set = SignalSet()
        for (index, item) in try array(value, path).enumerated() {
            do {
                try set.insert(name: try string(item, "\(path)[\(index)]"))
            } catch let error as SignalSetError {
                throw SpecError("\(path)[\(index)]", error.description)
            } catch {
                throw error as! SpecError
            }
        }
        return set
    }
}
