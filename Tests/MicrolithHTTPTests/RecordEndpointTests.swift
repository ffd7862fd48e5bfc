import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MicrolithHTTP
import MicrolithJSON
import MicrolithStore
import NIOCore
import Testing

@Suite("REST: one record")
struct RecordEndpointTests {
    @Test func getOfAMissingRecordIs404() async throws {
        try await withREST { client, _ in
            let response = try await client.execute(uri: "/Todo/t1", method: .get)
            let problem = response.expectProblem(.notFound)
            #expect(problem["detail"] == "Todo/t1 does not exist")
        }
    }

    @Test func putCreatesWith201ThenReplacesWith200() async throws {
        try await withREST { client, _ in
            let created = try await put(client, "/Todo/t1", #"{"title":"buy milk","priority":2}"#)
            #expect(created.status == .created)
            #expect(created.headers[.location] == "/Todo/t1")
            #expect(created.headers[.contentType] == "application/json")
            let etag = try #require(created.headers[.eTag])
            #expect(etag.hasPrefix("\"") && etag.hasSuffix("\"") && etag.count > 2)
            let body = created.json()
            #expect(body["id"] == "t1")
            #expect(body["title"] == "buy milk")
            #expect(body["priority"] == 2)
            #expect(body["createdAt"]?.doubleValue != nil)

            let replaced = try await put(client, "/Todo/t1", #"{"title":"buy bread"}"#)
            #expect(replaced.status == .ok)
            #expect(replaced.headers[.location] == nil)
            #expect(replaced.headers[.eTag] != etag)
            #expect(replaced.json()["title"] == "buy bread")
            #expect(replaced.json()["priority"] == nil)
            #expect(replaced.json()["createdAt"] == body["createdAt"])
        }
    }

    @Test func getReturnsTheStoredRecordWithItsETag() async throws {
        try await withREST { client, _ in
            let created = try await put(client, "/Todo/t1", #"{"title":"a","tags":["x"]}"#)
            let response = try await client.execute(uri: "/Todo/t1", method: .get)
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json")
            #expect(response.headers[.eTag] == created.headers[.eTag])
            #expect(response.text == created.text)
            #expect(response.json() == created.json())
            #expect(response.json()["tags"] == ["x"])
        }
    }

    @Test func headHasTheHeadersButNoBody() async throws {
        try await withREST { client, _ in
            let created = try await put(client, "/Todo/t1", #"{"title":"a"}"#)
            let response = try await client.execute(uri: "/Todo/t1", method: .head)
            #expect(response.status == .ok)
            #expect(response.body.readableBytes == 0)
            #expect(response.headers[.eTag] == created.headers[.eTag])
            #expect(response.headers[.contentLength] == String(created.body.readableBytes))

            let missing = try await client.execute(uri: "/Todo/none", method: .head)
            #expect(missing.status == .notFound)
        }
    }

    @Test func ifNoneMatchGives304() async throws {
        try await withREST { client, _ in
            let etag = try #require(try await put(client, "/Todo/t1", #"{"title":"a"}"#).headers[.eTag])
            for header in [etag, "W/\(etag)", "\"other\", \(etag)", "*"] {
                let response = try await client.execute(uri: "/Todo/t1", method: .get, headers: [.ifNoneMatch: header])
                #expect(response.status == .notModified, "If-None-Match: \(header)")
                #expect(response.headers[.eTag] == etag)
                #expect(response.body.readableBytes == 0)
            }
            let changed = try await client.execute(uri: "/Todo/t1", method: .get, headers: [.ifNoneMatch: "\"other\""])
            #expect(changed.status == .ok)
            #expect(changed.json()["title"] == "a")

            let patched = try await client.execute(uri: "/Todo/t1", method: .patch, body: json(#"{"notes":"x"}"#))
            #expect(patched.status == .ok)
            let stale = try await client.execute(uri: "/Todo/t1", method: .get, headers: [.ifNoneMatch: etag])
            #expect(stale.status == .ok, "a changed record no longer matches its old tag")
            #expect(stale.headers[.eTag] == patched.headers[.eTag])
        }
    }

    @Test func ifMatchGuardsPut() async throws {
        try await withREST { client, _ in
            let etag = try #require(try await put(client, "/Todo/t1", #"{"title":"a"}"#).headers[.eTag])

            let stale = try await put(client, "/Todo/t1", #"{"title":"b"}"#, headers: [.ifMatch: "\"stale\""])
            let problem = stale.expectProblem(.preconditionFailed)
            #expect(problem["detail"]?.stringValue?.contains("If-Match") == true)
            #expect(try await client.execute(uri: "/Todo/t1", method: .get).json()["title"] == "a")

            let weak = try await put(client, "/Todo/t1", #"{"title":"b"}"#, headers: [.ifMatch: "W/\(etag)"])
            weak.expectProblem(.preconditionFailed)

            let fresh = try await put(client, "/Todo/t1", #"{"title":"b"}"#, headers: [.ifMatch: etag])
            #expect(fresh.status == .ok)
            #expect(fresh.json()["title"] == "b")

            let onMissing = try await put(client, "/Todo/t2", #"{"title":"b"}"#, headers: [.ifMatch: "*"])
            onMissing.expectProblem(.preconditionFailed)
            #expect(try await client.execute(uri: "/Todo/t2", method: .get).status == .notFound)
        }
    }

    @Test func ifNoneMatchStarMakesPutCreateOnly() async throws {
        try await withREST { client, _ in
            let created = try await put(client, "/Todo/t1", #"{"title":"a"}"#, headers: [.ifNoneMatch: "*"])
            #expect(created.status == .created)
            let again = try await put(client, "/Todo/t1", #"{"title":"b"}"#, headers: [.ifNoneMatch: "*"])
            again.expectProblem(.preconditionFailed)
            #expect(try await client.execute(uri: "/Todo/t1", method: .get).json()["title"] == "a")
        }
    }

    @Test func patchMergesAndChecksConditions() async throws {
        try await withREST { client, _ in
            let etag = try #require(try await put(client, "/Todo/t1", #"{"title":"a","notes":"n","priority":1}"#).headers[.eTag])
            let headers: HTTPFields = [.contentType: "application/merge-patch+json", .ifMatch: etag]
            let patched = try await client.execute(
                uri: "/Todo/t1", method: .patch, headers: headers, body: json(#"{"notes":null,"done":true}"#))
            #expect(patched.status == .ok)
            #expect(patched.json()["title"] == "a")
            #expect(patched.json()["notes"] == nil)
            #expect(patched.json()["done"] == true)
            #expect(patched.json()["priority"] == 1)
            #expect(patched.headers[.eTag] != etag)

            let stale = try await client.execute(uri: "/Todo/t1", method: .patch, headers: headers, body: json(#"{"done":false}"#))
            stale.expectProblem(.preconditionFailed)

            let missing = try await client.execute(uri: "/Todo/none", method: .patch, body: json(#"{"done":false}"#))
            missing.expectProblem(.notFound)
            #expect(try await client.execute(uri: "/Todo/none", method: .get).status == .notFound, "PATCH never creates")
        }
    }

    @Test func postCreatesWithAGeneratedKeyAndLocation() async throws {
        try await withREST { client, _ in
            for uri in ["/Todo/", "/Todo"] {
                let response = try await client.execute(
                    uri: uri, method: .post, headers: [.contentType: "application/json"], body: json(#"{"title":"new"}"#))
                #expect(response.status == .created)
                let id = try #require(response.json()["id"]?.stringValue)
                #expect(response.headers[.location] == "/Todo/\(id)")
                #expect(response.headers[.eTag] != nil)
                let fetched = try await client.execute(uri: "/Todo/\(id)", method: .get)
                #expect(fetched.status == .ok)
                #expect(fetched.json()["title"] == "new")
            }

            let first = try await client.execute(uri: "/counters/", method: .post, body: json(#"{"value":1}"#))
            #expect(first.status == .created)
            #expect(first.headers[.location] == "/counters/1")
            let second = try await client.execute(uri: "/counters/", method: .post, body: json(#"{"value":2}"#))
            #expect(second.headers[.location] == "/counters/2")
            #expect(try await client.execute(uri: "/counters/2", method: .get).json()["value"] == 2)
        }
    }

    @Test func postWithATakenKeyIs409() async throws {
        try await withREST { client, _ in
            try await put(client, "/counters/5", #"{"value":1}"#)
            let response = try await client.execute(uri: "/counters/", method: .post, body: json(#"{"id":5,"value":2}"#))
            #expect(response.expectProblem(.conflict)["attribute"] == "id")
            #expect(try await client.execute(uri: "/counters/5", method: .get).json()["value"] == 1)
        }
    }

    @Test func deleteIs204ThenNotFound() async throws {
        try await withREST { client, _ in
            let etag = try #require(try await put(client, "/Todo/t1", #"{"title":"a"}"#).headers[.eTag])

            let stale = try await client.execute(uri: "/Todo/t1", method: .delete, headers: [.ifMatch: "\"stale\""])
            stale.expectProblem(.preconditionFailed)

            let deleted = try await client.execute(uri: "/Todo/t1", method: .delete, headers: [.ifMatch: etag])
            #expect(deleted.status == .noContent)
            #expect(deleted.body.readableBytes == 0)
            try await client.execute(uri: "/Todo/t1", method: .get).expectProblem(.notFound)
            try await client.execute(uri: "/Todo/t1", method: .delete).expectProblem(.notFound)
        }
    }

    @Test func keysAreDecodedFromThePathAndEncodedInLocation() async throws {
        try await withREST { client, _ in
            let created = try await put(client, "/Todo/a%20b", #"{"title":"spaced"}"#)
            #expect(created.status == .created)
            #expect(created.json()["id"] == "a b")
            #expect(created.headers[.location] == "/Todo/a%20b")
            #expect(try await client.execute(uri: "/Todo/a%20b", method: .get).json()["title"] == "spaced")

            let slashed = try await put(client, "/Todo/a%2Fb", #"{"title":"slashed"}"#)
            #expect(slashed.json()["id"] == "a/b")
            #expect(slashed.headers[.location] == "/Todo/a%2Fb")
            #expect(try await client.execute(uri: "/Todo/a%2Fb", method: .get).json()["title"] == "slashed")

            try await put(client, "/counters/7", #"{"value":7}"#)
            #expect(try await client.execute(uri: "/counters/7", method: .get).json()["id"] == 7)
        }
    }

    @Test func writesThroughRESTReachTheStore() async throws {
        try await withREST { client, store in
            try await put(client, "/Todo/t1", #"{"title":"a"}"#)
            let todo = try #require(store.table(exportName: "Todo"))
            #expect(try await store.get(todo, .string("t1"))?.record["title"] == "a")
            let log = try await store.changes(after: 0)
            #expect(log.map(\.operation) == [.put])
        }
    }
}
