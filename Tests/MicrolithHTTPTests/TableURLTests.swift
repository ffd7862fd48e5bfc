import Foundation
import HTTPTypes
import HummingbirdTesting
import MicrolithHTTP
import MicrolithJSON
import Testing

/// REST reads table URLs with the grammar every door shares: a key is everything after the
/// table's `/` (so it may hold `/`), and a path ending in `/` names the records under a prefix.
@Suite struct TableURLTests {
    func put(_ client: any TestClientProtocol, _ path: String, _ body: String = #"{"title":"x"}"#) async throws -> TestResponse {
        try await client.execute(uri: path, method: .put, headers: [.contentType: "application/json"], body: json(body))
    }

    func ids(_ response: TestResponse) throws -> [String] {
        guard case .array(let rows) = try JSONParser.parse(response.text) else { return [] }
        return rows.compactMap { $0.objectValue?["id"]?.stringValue }
    }

    @Test func aKeyMayHoldSlashesSpelledEitherWay() async throws {
        try await withREST { client, _ in
            let created = try await put(client, "/Todo/room1/lamp")
            #expect(created.status == .created)
            #expect(created.headers[.location] == "/Todo/room1%2Flamp", "Location escapes the '/' of the key")
            let plain = try await client.execute(uri: "/Todo/room1/lamp", method: .get)
            let escaped = try await client.execute(uri: "/Todo/room1%2Flamp", method: .get)
            #expect(plain.status == .ok && escaped.status == .ok)
            #expect(plain.text == escaped.text)
            #expect(try JSONParser.parse(plain.text).objectValue?["id"] == "room1/lamp")
            #expect(try await client.execute(uri: "/Todo/room1/lamp", method: .delete).status == .noContent)
            #expect(try await client.execute(uri: "/Todo/room1%2Flamp", method: .get).status == .notFound)
        }
    }

    @Test func aPathEndingInSlashListsTheRecordsUnderAPrefix() async throws {
        try await withREST { client, _ in
            for id in ["room1/lamp", "room1/fan", "room1/desk/drawer", "room10/lamp", "room1", "room2/lamp"] {
                #expect(try await put(client, "/Todo/\(id.replacingOccurrences(of: "/", with: "%2F"))").status == .created)
            }
            let room1 = try await client.execute(uri: "/Todo/room1/", method: .get)
            #expect(room1.status == .ok)
            #expect(try ids(room1) == ["room1/desk/drawer", "room1/fan", "room1/lamp"], "key order, the prefix's records only")
            let desk = try await client.execute(uri: "/Todo/room1%2Fdesk/", method: .get)
            #expect(try ids(desk) == ["room1/desk/drawer"])
            let limited = try await client.execute(uri: "/Todo/room1/?limit(1)", method: .get)
            #expect(try ids(limited) == ["room1/desk/drawer"], "the query applies within the prefix")
            let filtered = try await client.execute(uri: "/Todo/room1/?id=room1%2Ffan", method: .get)
            #expect(try ids(filtered) == ["room1/fan"])
            #expect(try ids(try await client.execute(uri: "/Todo/nothing/", method: .get)) == [])
        }
    }

    @Test func aPrefixIsReadNotWritten() async throws {
        try await withREST { client, _ in
            for method: HTTPRequest.Method in [.put, .patch, .delete, .post] {
                let response = try await client.execute(uri: "/Todo/room1/", method: method, body: json(#"{"title":"x"}"#))
                let problem = response.expectProblem(.methodNotAllowed)
                #expect(response.headers[.allow] == "GET, HEAD, OPTIONS")
                #expect(problem["detail"]?.stringValue?.contains("names the records whose key starts with 'room1/'") == true, "\(response.text)")
            }
            let numbers = try await client.execute(uri: "/counters/1/", method: .get)
            let problem = numbers.expectProblem(.badRequest)
            #expect(problem["detail"]?.stringValue?.contains("keys of counters are numbers") == true, "\(numbers.text)")
            let bad = try await client.execute(uri: "/Todo/a%0A/", method: .get)
            #expect(bad.expectProblem(.badRequest)["code"] == "invalidID")
        }
    }
}
