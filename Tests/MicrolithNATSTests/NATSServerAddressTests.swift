import Testing

@testable import MicrolithNATS

@Suite struct NATSServerAddressTests {
    @Test func addressesReadWithOrWithoutSchemePortAndCredentials() throws {
        #expect(try NATSServerAddress(parsing: "nats://10.0.0.2:4333") == NATSServerAddress(host: "10.0.0.2", port: 4333))
        #expect(try NATSServerAddress(parsing: "localhost") == NATSServerAddress(host: "localhost", port: 4222))
        #expect(try NATSServerAddress(parsing: "NATS://h:1/") == NATSServerAddress(host: "h", port: 1))
        #expect(try NATSServerAddress(parsing: "nats://u:p@w@h:5") == NATSServerAddress(host: "h", port: 5, user: "u", password: "p@w"))
        #expect(try NATSServerAddress(parsing: "nats://tok@h") == NATSServerAddress(host: "h", port: 4222, user: "tok"))
        #expect(try NATSServerAddress(parsing: "[::1]:4222") == NATSServerAddress(host: "::1", port: 4222))
        #expect(NATSServerAddress(host: "::1").description == "nats://[::1]:4222")
    }

    @Test func mistakesAreNamed() {
        for (text, words) in [
            ("http://h:1", "scheme must be nats://"), ("nats://", "names no host"), ("h:x", "not a number"), ("h:0", "1 to 65535"),
            ("h:70000", "1 to 65535"), ("[::1", "lacks its ']'"), ("a b:1", "names no host"),
        ] {
            #expect(throws: NATSError.self, "\(text)") { try NATSServerAddress(parsing: text) }
            do {
                _ = try NATSServerAddress(parsing: text)
            } catch {
                #expect(error.message.contains(words), "\(text): \(error.message)")
            }
        }
    }
}
