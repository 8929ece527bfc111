/// An error of Corral's own: the job was not valid, or Corral could not do its part.
/// A program that fails is never one of these: that is a ``RunReport``.
public struct CorralError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        /// The job, a limit or a flag value was refused before anything ran.
        case invalidJob = "invalid-job"
        /// A system call Corral needed failed.
        case system
    }

    public let kind: Kind
    /// One line, naming the field or the call.
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
