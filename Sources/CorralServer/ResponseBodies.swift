import Corral

/// `GET /v1/health`.
struct HealthBody: Codable, Sendable {
    /// `ready`, or `shutting-down` once SIGTERM/SIGINT arrived.
    let status: String
    let ready: Bool
    let inFlight: Int
    let queued: Int
    let parallelism: Int
    let queueLimit: Int
    /// Whether processes run isolated (namespaces, minimal filesystem, seccomp).
    let isolation: Bool
}

/// `GET /v1/version`.
struct VersionBody: Codable, Sendable {
    let version: String
    let api: String
}
