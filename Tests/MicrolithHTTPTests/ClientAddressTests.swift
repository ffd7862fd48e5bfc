import MicrolithHTTP
import Testing

/// The address failed sign-ins count against: the peer, or the client a trusted proxy names.
@Suite struct ClientAddressTests {
    @Test func withoutTrustedProxiesThePeerCounts() {
        let none = ClientAddress()
        #expect(none.of(peer: "10.0.0.1", forwardedFor: "203.0.113.9") == "10.0.0.1", "anyone can write the header")
        #expect(none.of(peer: nil, forwardedFor: "203.0.113.9") == nil)
    }

    @Test func aTrustedProxysRightMostUntrustedEntryCounts() {
        let proxies = ClientAddress(trustedProxies: ["10.0.0.1", "10.0.0.2", "FD00::1"])
        #expect(proxies.of(peer: "10.0.0.1", forwardedFor: "203.0.113.9") == "203.0.113.9")
        // What the client wrote itself is to the left; the proxies' own entries are to the right.
        #expect(proxies.of(peer: "10.0.0.1", forwardedFor: "1.2.3.4, 203.0.113.9, 10.0.0.2") == "203.0.113.9")
        #expect(proxies.of(peer: "fd00::1", forwardedFor: "2001:db8::7") == "2001:db8::7")
        // A peer that is not a proxy is itself the client, whatever it sends.
        #expect(proxies.of(peer: "192.0.2.5", forwardedFor: "203.0.113.9") == "192.0.2.5")
        // No header, an empty one, or garbage: the last trusted address stands.
        #expect(proxies.of(peer: "10.0.0.1", forwardedFor: nil) == "10.0.0.1")
        #expect(proxies.of(peer: "10.0.0.1", forwardedFor: "not-an-address") == "10.0.0.1")
        #expect(proxies.of(peer: "10.0.0.1", forwardedFor: "203.0.113.9, unknown, 10.0.0.2") == "10.0.0.2")
        #expect(proxies.of(peer: "10.0.0.1", forwardedFor: "10.0.0.2") == "10.0.0.2", "only proxies: the left-most")
    }

    @Test func addressesAreRecognisedByTheirCharacters() {
        for good in ["127.0.0.1", "2001:db8::1", "::1", "fd00::2"] { #expect(ClientAddress.isAddress(good), "\(good)") }
        #expect(ClientAddress.isAddress("FD00::2") && ClientAddress.isAddress("::ffff:10.0.0.1"))
        #expect(ClientAddress(trustedProxies: ["10.0.0.1"]).of(peer: "::ffff:10.0.0.1", forwardedFor: "203.0.113.9") == "203.0.113.9")
        #expect(ClientAddress().of(peer: "::FFFF:192.0.2.1", forwardedFor: nil) == "192.0.2.1")
        for bad in ["", "example.com", "10.0.0.1:80x", "1.2.3.4:5678", "10.0.0.0/8", String(repeating: "1", count: 46), "1.2.3.4 "] {
            #expect(!ClientAddress.isAddress(bad), "\(bad)")
        }
    }
}
