import MicrolithHTTP
import Testing

/// The browser checks on their own: which hosts a request may name, and which origins may
/// write or open WebSockets.
@Suite struct BrowserPolicyTests {
    let policy = BrowserPolicy()

    @Test(arguments: [
        "127.0.0.1", "127.0.0.1:9926", "10.1.2.3:80", "[::1]", "[::1]:9926", "[fe80::1]:1", "localhost", "LOCALHOST:9926", "localhost.",
        "app.localhost:3000", "catalog:9926", "intranet", "App.LocalHost:3000", "x.localhost.", "255.255.255.255:1",
    ])
    func addressesAndNamesWithoutADotAreAllowed(_ host: String) {
        #expect(policy.allowsHost(host))
        #expect(policy.refusal(method: "GET", authority: host, origin: nil, fetchSite: nil) == nil)
    }

    @Test(arguments: [
        "evil.example", "evil.example:9926", "127.0.0.1.evil.example", "localhost.evil.example", "1.2.3", "256.1.1.1", "1.2.3.4.5", "1.2.3.4a",
        "[fe80::zz]:1", "[evil.example]", "localhost.example.",
    ])
    func otherNamesAreRefusedNamingTheSetting(_ host: String) throws {
        #expect(!policy.allowsHost(host))
        let refusal = try #require(policy.refusal(method: "GET", authority: host, origin: nil, fetchSite: nil))
        #expect(refusal.status == 403 && refusal.code == "hostNotAllowed")
        #expect(refusal.detail.contains("http.allowedHosts"))
    }

    @Test func allowedHostsAddNamesAndAStarAllowsAll() {
        let named = BrowserPolicy(allowedHosts: ["Shop.Example.com"])
        #expect(named.allowsHost("shop.example.com:8080"))
        #expect(named.allowsHost("shop.example.com."))
        #expect(!named.allowsHost("www.shop.example.com"))
        #expect(BrowserPolicy(allowedHosts: ["*"]).allowsHost("anything.example"))
        #expect(policy.allowsHost(nil), "a request without Host is not refused here")
    }

    @Test(arguments: ["POST", "PUT", "PATCH", "DELETE", "put", "PROPFIND"])
    func writesFromAnotherOriginAreRefused(_ method: String) throws {
        let refusal = try #require(policy.refusal(method: method, authority: "127.0.0.1:9926", origin: "https://evil.example", fetchSite: nil))
        #expect(refusal.status == 403 && refusal.code == "crossOriginRequest")
        #expect(refusal.detail.contains("https://evil.example") && refusal.detail.contains("http.allowedOrigins"))
        // Another port of the same host is another origin.
        #expect(policy.refusal(method: method, authority: "127.0.0.1:9926", origin: "http://127.0.0.1:8080", fetchSite: nil) != nil)
        #expect(policy.refusal(method: method, authority: "127.0.0.1:9926", origin: "null", fetchSite: nil) != nil)
        #expect(policy.refusal(method: method, authority: "127.0.0.1:9926", origin: nil, fetchSite: "cross-site") != nil)
        #expect(policy.refusal(method: method, authority: "127.0.0.1:9926", origin: nil, fetchSite: "same-site") != nil)
    }

    @Test func theServersOwnOriginAndClientsWithoutBrowserHeadersMayWrite() {
        #expect(policy.refusal(method: "POST", authority: "127.0.0.1:9926", origin: "http://127.0.0.1:9926", fetchSite: "same-origin") == nil)
        #expect(policy.refusal(method: "POST", authority: "localhost:9926", origin: "https://LOCALHOST:9926/", fetchSite: nil) == nil)
        #expect(policy.refusal(method: "POST", authority: "localhost:80", origin: "http://localhost", fetchSite: nil) == nil)
        #expect(policy.refusal(method: "DELETE", authority: "127.0.0.1:9926", origin: nil, fetchSite: nil) == nil)
        #expect(policy.refusal(method: "PUT", authority: "127.0.0.1:9926", origin: nil, fetchSite: "none") == nil)
    }

    @Test func overHTTPSTheServersOwnOriginIsItsHTTPSOne() {
        let secure = BrowserPolicy(secure: true)
        #expect(secure.refusal(method: "POST", authority: "localhost:9926", origin: "https://localhost:9926", fetchSite: nil) == nil)
        #expect(secure.refusal(method: "POST", authority: "localhost", origin: "https://localhost", fetchSite: nil) == nil)
        // A page injected into plain HTTP under the same name is another origin.
        let refused = secure.refusal(method: "POST", authority: "localhost:9926", origin: "http://localhost:9926", fetchSite: nil)
        #expect(refused?.code == "crossOriginRequest")
        #expect(secure.refusal(method: "GET", authority: "localhost", origin: "http://localhost", fetchSite: nil, upgrade: true) != nil)
        // Listed, it may.
        let listed = BrowserPolicy(allowedOrigins: ["http://localhost:9926"], secure: true)
        #expect(listed.refusal(method: "POST", authority: "localhost:9926", origin: "http://localhost:9926", fetchSite: nil) == nil)
    }

    @Test func readsAreNotRefusedForTheirOriginButWebSocketsAre() {
        for method in ["GET", "HEAD", "OPTIONS"] {
            #expect(policy.refusal(method: method, authority: "127.0.0.1:1", origin: "https://evil.example", fetchSite: "cross-site") == nil)
        }
        #expect(policy.refusal(method: "GET", authority: "127.0.0.1:1", origin: "https://evil.example", fetchSite: nil, upgrade: true) != nil)
        #expect(policy.refusal(method: "GET", authority: "127.0.0.1:1", origin: "http://127.0.0.1:1", fetchSite: nil, upgrade: true) == nil)
    }

    @Test func allowedOriginsMayWriteAndAStarAllowsAll() {
        let allowed = BrowserPolicy(allowedOrigins: ["https://App.example.com/"])
        #expect(allowed.refusal(method: "POST", authority: "127.0.0.1:1", origin: "https://app.example.com", fetchSite: "cross-site") == nil)
        #expect(allowed.refusal(method: "POST", authority: "127.0.0.1:1", origin: "http://app.example.com", fetchSite: nil) != nil)
        #expect(
            BrowserPolicy(allowedOrigins: ["*"]).refusal(method: "POST", authority: "127.0.0.1:1", origin: "https://x.example", fetchSite: nil) == nil
        )
    }

    @Test func corsIsForTheAllowedOriginsAndSendsTheirRequestsToTheRouter() {
        let allowed = BrowserPolicy(allowedOrigins: ["https://app.example.com"])
        #expect(allowed.allowsCrossOrigin("https://APP.example.com/"))
        #expect(!allowed.allowsCrossOrigin("https://evil.example"))
        #expect(!policy.allowsCrossOrigin("https://app.example.com"))
        #expect(allowed.answersInPlace(authority: "127.0.0.1:1", origin: nil))
        #expect(!allowed.answersInPlace(authority: "127.0.0.1:1", origin: "https://app.example.com"), "the router adds the CORS headers")
        #expect(policy.answersInPlace(authority: "127.0.0.1:1", origin: "https://app.example.com"), "no CORS: nothing to add")
        #expect(!policy.answersInPlace(authority: "evil.example", origin: nil))
    }
}
