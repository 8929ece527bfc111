/// Why a job spec was refused: the path of the offending field and what is wrong with it,
/// e.g. `processes[1].stdin: unknown pipe "toSolution"`.
public struct SpecError: Error, Sendable, Hashable, CustomStringConvertible {
    public let path: String
    public let message: String

    public init(_ path: String, _ message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { path.isEmpty ? message : "\(path): \(message)" }
}
