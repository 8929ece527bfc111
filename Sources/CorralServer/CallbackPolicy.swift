import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where job callbacks may go (`--callback-allow`, repeatable): host names (exact, any case)
/// and networks (`10.1.2.0/24`, `2001:db8::/32`, or one address). None: callbacks are off and a
/// job asking for one is refused. A destination is checked twice: its URL when the job is
/// queued, and every address its name resolves to when the report is sent (the connection goes
/// to the address checked, so a name cannot change between the check and the send). An
/// address in a loopback, link-local (the cloud metadata address 169.254.169.254 among them),
/// unspecified or multicast range is refused unless a network entry names it explicitly;
/// redirects are never followed.
struct CallbackPolicy: Sendable {
    struct Network: Sendable, Hashable {
        let address: [UInt8]
        let prefix: Int

        func contains(_ other: [UInt8]) -> Bool {
            guard other.count == address.count else { return false }
            var bits = prefix
            for index in address.indices where bits > 0 {
                let mask: UInt8 = bits >= 8 ? 0xFF : ~(0xFF >> UInt8(bits))
                if address[index] & mask != other[index] & mask { return false }
                bits -= 8
            }
            return true
        }
    }

    /// A callback's destination, as checked at enqueue.
    struct Target: Sendable, Hashable {
        let host: String
        let port: Int
        let path: String
        /// The host is an address literal (then it is the only address tried).
        let literal: [UInt8]?
        /// `https://`: TLS with the certificate verified for the host.
        let secure: Bool
    }

    let hosts: Set<String>
    let networks: [Network]

    var isEnabled: Bool { !hosts.isEmpty || !networks.isEmpty }

    /// Callbacks off.
    static let none = CallbackPolicy(hosts: [], networks: [])

    private init(hosts: Set<String>, networks: [Network]) {
        self.hosts = hosts
        self.networks = networks
    }

    init(allow entries: [String]) throws(ServerError) {
        var hosts: Set<String> = []
        var networks: [Network] = []
        for entry in entries {
            if let network = Self.network(entry) {
                networks.append(network)
            } else if entry.contains("/") || entry.isEmpty || entry.contains(":") {
                throw ServerError("--callback-allow \(entry): not a host name, an address or a network (ADDRESS/PREFIX)")
            } else {
                hosts.insert(entry.lowercased())
            }
        }
        self.hosts = hosts
        self.networks = networks
    }

    static func network(_ text: String) -> Network? {
        let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
        guard let address = parts.first.flatMap(address) else { return nil }
        let maximum = address.count * 8
        guard parts.count == 2 else { return Network(address: address, prefix: maximum) }
        guard let prefix = Int(parts[1]), (0...maximum).contains(prefix) else { return nil }
        return Network(address: address, prefix: prefix)
    }

    /// An IPv4 (4 bytes) or IPv6 (16 bytes) address literal; IPv4-mapped IPv6 becomes IPv4.
    static func address(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        let bare = text.hasPrefix("[") && text.hasSuffix("]") ? String(text.dropFirst().dropLast()) : text
        if inet_pton(AF_INET6, bare, &v6) == 1 {
            let bytes = withUnsafeBytes(of: &v6) { Array($0) }
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF { return Array(bytes[12...]) }
            return bytes
        }
        return nil
    }

    /// Ranges never called unless a network entry names them. 64:ff9b:1::/48 is the local-use
    /// NAT64 prefix (RFC 8215), whose IPv4 address may sit at any of RFC 6052's places: the
    /// whole prefix is refused rather than guessed, unless an entry inside it names it.
    static let forbidden: [Network] = [
        "0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "255.255.255.255/32", "100.64.0.0/10",
        "::/128", "::1/128", "fe80::/10", "ff00::/8", "fd00:ec2::254/128", "64:ff9b:1::/48",
    ].compactMap(network)

    static let nat64 = network("64:ff9b::/96")!
    static let localNAT64 = network("64:ff9b:1::/48")!
    static let sixToFour = network("2002::/16")!
    static let teredo = network("2001::/32")!

    /// The IPv4 addresses an IPv6 address carries, which a translator or tunnel may deliver
    /// to: NAT64 `64:ff9b::a.b.c.d`, IPv4-compatible `::a.b.c.d`, 6to4 `2002:AABB:CCDD::`,
    /// Teredo `2001:0:SERVER:…:~CLIENT` (IPv4-mapped `::ffff:a.b.c.d` is read as IPv4 already).
    static func embeddedIPv4(_ address: [UInt8]) -> [[UInt8]] {
        guard address.count == 16 else { return [] }
        let last = Array(address[12...])
        // ::/128 and ::1 are themselves (unspecified, loopback), not IPv4-compatible.
        let compatible = address[0..<12].allSatisfy { $0 == 0 } && !(address[12..<15].allSatisfy { $0 == 0 } && address[15] <= 1)
        if nat64.contains(address) || compatible { return [last] }
        if address[0..<10].allSatisfy({ $0 == 0 }) && address[10] == 0xFF && address[11] == 0xFF { return [last] }
        if sixToFour.contains(address) { return [Array(address[2..<6])] }
        if teredo.contains(address) { return [Array(address[4..<8]), last.map { ~$0 }] }
        return []
    }

    /// At enqueue: an `http://` or `https://HOST[:PORT]/PATH` URL whose host an entry names.
    func check(_ url: String) throws(CallbackRefusal) -> Target {
        guard isEnabled else {
            throw CallbackRefusal("callbacks are off on this server (it was started without --callback-allow)")
        }
        guard url.utf8.count <= 2048, let components = URLComponents(string: url) else { throw CallbackRefusal("callback: not a URL") }
        let scheme = components.scheme?.lowercased()
        guard scheme == "http" || scheme == "https" else {
            throw CallbackRefusal("callback: only http:// and https:// URLs are called")
        }
        let secure = scheme == "https"
        guard components.user == nil, components.password == nil else { throw CallbackRefusal("callback: no user or password in the URL") }
        guard let host = components.host?.lowercased(), !host.isEmpty else { throw CallbackRefusal("callback: no host") }
        let port = components.port ?? (secure ? 443 : 80)
        guard (1...65535).contains(port) else { throw CallbackRefusal("callback: bad port") }
        var path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        if let query = components.percentEncodedQuery { path += "?" + query }
        if let literal = Self.address(host) {
            guard permits(literal, named: false) else {
                throw CallbackRefusal("callback: \(host) is not an address this server may call (--callback-allow)")
            }
            return Target(host: host, port: port, path: path, literal: literal, secure: secure)
        }
        guard hosts.contains(host) else {
            throw CallbackRefusal("callback: \(host) is not a host this server may call (--callback-allow)")
        }
        return Target(host: host, port: port, path: path, literal: nil, secure: secure)
    }

    /// Whether `address` may be called: inside a network entry, or reached through an allowed
    /// host name and in no forbidden range.
    /// An IPv6 address that carries an IPv4 one (see ``embeddedIPv4(_:)``) is also held to the
    /// IPv4 rules: refused when that IPv4 address is in a forbidden range a network entry does
    /// not name (an entry such as `2000::/3` does not let `2002:a9fe:a9fe::` reach the metadata
    /// address through a 6to4 relay).
    func permits(_ address: [UInt8], named: Bool) -> Bool {
        for carried in Self.embeddedIPv4(address) where Self.forbidden.contains(where: { $0.contains(carried) }) {
            guard networks.contains(where: { $0.contains(carried) }) else { return false }
        }
        // Local-use NAT64: only an entry inside that prefix names it (a wide one such as ::/0
        // would let it translate to any inside IPv4 address).
        if Self.localNAT64.contains(address) {
            return networks.contains { $0.prefix >= 48 && Self.localNAT64.contains($0.address) && $0.contains(address) }
        }
        if networks.contains(where: { $0.contains(address) }) { return true }
        return named && !Self.forbidden.contains(where: { $0.contains(address) })
    }
}

struct CallbackRefusal: Error, Sendable {
    let message: String
    init(_ message: String) { self.message = message }
}
