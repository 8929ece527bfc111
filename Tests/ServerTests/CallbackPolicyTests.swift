@testable import CorralServer
import Testing

/// The check a callback's resolved addresses go through at send (an allowed name whose DNS
/// answer is an IPv6 form carrying an inside IPv4 address). The same forms as literals are
/// performed against a server in QueueTests' Callbacks suite.
@Suite("Callback destinations")
struct CallbackPolicyTests {
    static func bytes(_ text: String) throws -> [UInt8] { try #require(CallbackPolicy.address(text), "\(text)") }

    @Test("an allowed name that resolves to NAT64, IPv4-compatible, IPv4-mapped, 6to4, Teredo or local-use NAT64 forms of inside addresses is refused")
    func namedEmbeddedForms() throws {
        let policy = try CallbackPolicy(allow: ["hooks.example"])
        for inside in ["64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", "::127.0.0.1", "::ffff:127.0.0.1", "::169.254.169.254",
                       "2002:a9fe:a9fe::", "2002:7f00:1:2::3", "2001:0:a9fe:a9fe::", "2001:0:808:808::80ff:fffe",
                       "64:ff9b:1::a9fe:a9fe", "64:ff9b:1:a9fe:a9:fe00::", "::1", "::", "169.254.169.254"] {
            #expect(!policy.permits(try Self.bytes(inside), named: true), "\(inside)")
        }
        for outside in ["64:ff9b::808:808", "2002:808:808::1", "2001:0:808:808::f7f7:f7f7", "::8.8.8.8", "2001:db8::1", "8.8.8.8"] {
            #expect(policy.permits(try Self.bytes(outside), named: true), "\(outside)")
        }
    }

    @Test("a network entry that names the inside IPv4 address lets its IPv6 forms through; an IPv6 network alone does not")
    func explicitEntries() throws {
        let wide = try CallbackPolicy(allow: ["::/0"])
        #expect(!wide.permits(try Self.bytes("64:ff9b::7f00:1"), named: false))
        #expect(wide.permits(try Self.bytes("64:ff9b::808:808"), named: false))
        let named = try CallbackPolicy(allow: ["::/0", "127.0.0.0/8"])
        #expect(named.permits(try Self.bytes("64:ff9b::7f00:1"), named: false))
        #expect(named.permits(try Self.bytes("::1"), named: false), "::1 is loopback itself, named by ::/0")
        #expect(!wide.permits(try Self.bytes("64:ff9b:1::a9fe:a9fe"), named: false), "::/0 does not name the local-use NAT64 prefix")
        let local = try CallbackPolicy(allow: ["64:ff9b:1:5::/64"])
        #expect(local.permits(try Self.bytes("64:ff9b:1:5::808:808"), named: false), "an entry inside the local-use NAT64 prefix names it")
        #expect(!local.permits(try Self.bytes("64:ff9b:1:6::808:808"), named: true))
        let loopback6 = try CallbackPolicy(allow: ["::1"])
        #expect(loopback6.permits(try Self.bytes("::1"), named: false))
    }
}
