import Foundation
import PostgresNIO

extension PostgresJobQueue {
    /// The parts of a queue URL.
    struct Target {
        let host: String
        let port: Int
        let user: String
        let password: String?
        let database: String?
        let mode: String

        init(_ url: String) throws(QueueError) {
            // The URL's text is never repeated in an error: it may hold a password.
            guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? ""),
                  let host = components.host, !host.isEmpty, let user = components.user, !user.isEmpty else {
                throw QueueError("the queue's URL must be postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
            }
            let database = String(components.path.drop(while: { $0 == "/" }))
            mode = components.queryItems?.first(where: { $0.name == "sslmode" })?.value ?? "prefer"
            guard ["disable", "prefer", "require"].contains(mode) else {
                throw QueueError("the queue's URL: sslmode must be disable, prefer or require")
            }
            self.host = host
            port = components.port ?? 5432
            self.user = user
            password = components.password
            self.database = database.isEmpty ? nil : database
        }

        var client: PostgresClient.Configuration {
            let tls: PostgresClient.Configuration.TLS = switch mode {
            case "disable": .disable
            case "require": .require(.makeClientConfiguration())
            default: .prefer(.makeClientConfiguration())
            }
            return PostgresClient.Configuration(host: host, port: port, username: user, password: password, database: database, tls: tls)
        }

        func connection() throws -> PostgresConnection.Configuration {
            let tls: PostgresConnection.Configuration.TLS = switch mode {
            case "disable": .disable
            case "require": .require(try .init(configuration: .makeClientConfiguration()))
            default: .prefer(try .init(configuration: .makeClientConfiguration()))
            }
            return PostgresConnection.Configuration(host: host, port: port, username: user, password: password, database: database, tls: tls)
        }
    }
}
