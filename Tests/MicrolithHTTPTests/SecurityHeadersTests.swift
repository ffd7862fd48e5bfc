import HTTPTypes
import Testing

@testable import MicrolithHTTP

@Suite struct SecurityHeadersTests {
    @Test func htmlIsRecognisedInAnyCaseAndNothingElseIs() {
        #expect(SecurityHeaders.isHTML("text/html"))
        #expect(SecurityHeaders.isHTML("Text/HTML; charset=utf-8"))
        #expect(!SecurityHeaders.isHTML("text/htm"))
        #expect(!SecurityHeaders.isHTML("application/json"))
        #expect(!SecurityHeaders.isHTML(" text/html"))
        #expect(!SecurityHeaders.isHTML(""))
        #expect(!SecurityHeaders.isHTML(nil))
    }

    @Test func pagesGetTheHeadersTheyLackAndOtherResponsesNone() throws {
        var page: HTTPFields = [.contentType: "text/html; charset=utf-8", try #require(HTTPField.Name("X-Frame-Options")): "SAMEORIGIN"]
        SecurityHeaders.add(to: &page)
        #expect(page[try #require(HTTPField.Name("X-Frame-Options"))] == "SAMEORIGIN")
        #expect(page[try #require(HTTPField.Name("X-Content-Type-Options"))] == "nosniff")
        #expect(page[try #require(HTTPField.Name("Referrer-Policy"))] == "strict-origin-when-cross-origin")
        #expect(page[try #require(HTTPField.Name("Strict-Transport-Security"))] == nil)

        var secure: HTTPFields = [.contentType: "TEXT/HTML"]
        SecurityHeaders.add(to: &secure, secure: true)
        #expect(secure[try #require(HTTPField.Name("Strict-Transport-Security"))] == "max-age=31536000")
        #expect(secure.count == SecurityHeaders.html.count + 2)

        var json: HTTPFields = [.contentType: "application/json"]
        SecurityHeaders.add(to: &json, secure: true)
        #expect(json.count == 1)
    }
}
