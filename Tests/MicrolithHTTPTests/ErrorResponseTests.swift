import HTTPTypes
import Hummingbird
import HummingbirdTesting
import MicrolithHTTP
import MicrolithJSON
import MicrolithStore
import NIOCore
import Testing

@Suite("REST: errors are problem+json")
struct ErrorResponseTests {
    @Test func malformedJSONIs400WithTheOffset() async throws {
        try await withREST { client, _ in
            let response = try await put(client, "/Todo/t1", #"{"title": }"#)
            let problem = response.expectProblem(.badRequest)
            #expect(problem["title"] == "Malformed JSON")
            #expect(problem["offset"] == 10)
            #expect(problem["detail"] == "malformed JSON at byte 10: unexpected character '}'")
            #expect(try await client.execute(uri: "/Todo/t1", method: .get).status == .notFound)
        }
    }

    @Test func bodiesThatAreNotObjectsAre400() async throws {
        try await withREST { client, _ in
            let array = try await put(client, "/Todo/t1", "[1]")
            #expect(array.expectProblem(.badRequest)["detail"]?.stringValue?.contains("got array") == true)
            let empty = try await client.execute(uri: "/Todo/t1", method: .put, headers: [.contentType: "application/json"])
            #expect(empty.expectProblem(.badRequest)["detail"]?.stringValue?.contains("empty") == true)
            let post = try await client.execute(uri: "/Todo/", method: .post, body: json("\"text\""))
            post.expectProblem(.badRequest)
        }
    }

    @Test func aValueOfTheWrongTypeIs400NamingTheAttribute() async throws {
        try await withREST { client, _ in
            let response = try await put(client, "/Todo/t1", #"{"title":"a","priority":"high"}"#)
            let problem = response.expectProblem(.badRequest)
            #expect(problem["attribute"] == "priority")
            #expect(problem["detail"]?.stringValue?.contains("'priority'") == true)

            let nested = try await put(client, "/Todo/t1", #"{"title":"a","tags":["ok",3]}"#)
            #expect(nested.expectProblem(.badRequest)["attribute"] == "tags[1]")

            let missing = try await put(client, "/Todo/t1", #"{"notes":"no title"}"#)
            #expect(missing.expectProblem(.badRequest)["attribute"] == "title")

            let posted = try await client.execute(uri: "/Todo/", method: .post, body: json(#"{"title":false}"#))
            #expect(posted.expectProblem(.badRequest)["attribute"] == "title")
            #expect(try await client.execute(uri: "/Todo/", method: .get).text == "[]")
        }
    }

    @Test func aBodyKeyThatDiffersFromThePathIs400() async throws {
        try await withREST { client, _ in
            let response = try await put(client, "/Todo/t1", #"{"id":"t2","title":"a"}"#)
            #expect(response.expectProblem(.badRequest)["attribute"] == "id")
        }
    }

    @Test func aKeyOfTheWrongTypeIs400() async throws {
        try await withREST { client, _ in
            let response = try await client.execute(uri: "/counters/abc", method: .get)
            let problem = response.expectProblem(.badRequest)
            #expect(problem["detail"]?.stringValue?.contains("'abc'") == true)
            try await client.execute(uri: "/counters/99999999999", method: .get).expectProblem(.badRequest)
            try await put(client, "/counters/1.5", #"{"value":1}"#).expectProblem(.badRequest)
        }
    }

    @Test func aBodyOverTheLimitIs413() async throws {
        try await withREST(HTTPConfiguration(maximumBodyBytes: 64)) { client, _ in
            let big = #"{"title":""# + String(repeating: "x", count: 200) + #""}"#
            try await put(client, "/Todo/t1", big).expectProblem(.contentTooLarge)
            let post = try await client.execute(uri: "/Todo/", method: .post, body: json(big))
            post.expectProblem(.contentTooLarge)
            #expect(try await put(client, "/Todo/t1", #"{"title":"small"}"#).status == .created)
        }
    }

    @Test func aQueryOverTheLimitIs414() async throws {
        try await withREST(HTTPConfiguration(maximumQueryLength: 16)) { client, _ in
            let long = try await client.execute(uri: "/Todo/?notes==" + String(repeating: "a", count: 20), method: .get)
            long.expectProblem(.uriTooLong)
            let delete = try await client.execute(uri: "/Todo/?notes==" + String(repeating: "a", count: 20), method: .delete)
            delete.expectProblem(.uriTooLong)
            #expect(try await client.execute(uri: "/Todo/?notes==a", method: .get).status == .ok)
        }
    }

    @Test func aBodyThatIsNotJSONIs415() async throws {
        try await withREST { client, _ in
            let xml = try await client.execute(
                uri: "/Todo/t1", method: .put, headers: [.contentType: "application/xml"], body: json("<todo/>"))
            let problem = xml.expectProblem(.unsupportedMediaType)
            #expect(problem["detail"]?.stringValue?.contains("application/xml") == true)
            let form = try await client.execute(
                uri: "/Todo/t2", method: .put, headers: [.contentType: "application/x-www-form-urlencoded"], body: json(#"{"title":"curl"}"#))
            #expect(form.status == .created, "curl -d bodies are read as JSON")
        }
    }

    @Test func unknownTablesAre404() async throws {
        try await withREST { client, _ in
            let get = try await client.execute(uri: "/Nope/1", method: .get)
            #expect(get.expectProblem(.notFound)["detail"]?.stringValue?.contains("Todo, counters") == true)
            try await client.execute(uri: "/Nope/", method: .get).expectProblem(.notFound)
            try await client.execute(uri: "/Hidden/x", method: .get).expectProblem(.notFound)
            let putResponse = try await put(client, "/Nope/1", #"{"title":"x"}"#)
            #expect(putResponse.expectProblem(.notFound)["detail"]?.stringValue?.contains("'Nope'") == true)
            try await client.execute(uri: "/Nope/", method: .post, body: json("{}")).expectProblem(.notFound)
            try await client.execute(uri: "/Nope/1", method: .delete).expectProblem(.notFound)
            try await client.execute(uri: "/Nope/?a==1", method: .delete).expectProblem(.notFound)
        }
    }

    @Test func otherPathsAre404() async throws {
        try await withREST { client, _ in
            try await client.execute(uri: "/Todo/t1/extra", method: .get).expectProblem(.notFound)
            try await client.execute(uri: "/", method: .get).expectProblem(.notFound)
        }
    }

    @Test func wrongMethodsAre405WithAllow() async throws {
        try await withREST { client, _ in
            let putCollection = try await put(client, "/Todo/", #"{"title":"x"}"#)
            putCollection.expectProblem(.methodNotAllowed)
            #expect(putCollection.headers[.allow] == "GET, HEAD, POST, DELETE, OPTIONS")
            let postRecord = try await client.execute(uri: "/Todo/t1", method: .post, body: json(#"{"title":"x"}"#))
            postRecord.expectProblem(.methodNotAllowed)
            #expect(postRecord.headers[.allow] == "GET, HEAD, PUT, PATCH, DELETE, OPTIONS")
        }
    }

    @Test func storeErrorsMapToStatuses() {
        let cases: [(StoreError.Code, HTTPResponse.Status, String)] = [
            (.invalidRecord, .badRequest, "invalidRecord"), (.invalidID, .badRequest, "invalidID"),
            (.versionMismatch, .preconditionFailed, "versionMismatch"), (.alreadyExists, .conflict, "alreadyExists"),
            (.unknownTable, .notFound, "unknownTable"),
        ]
        for (code, status, name) in cases {
            let problem = ProblemMiddleware<BasicRequestContext>.problem(for: StoreError(code, "m", attribute: "a"))
            #expect(problem.status == status, "\(code)")
            #expect(problem.detail == "m")
            #expect(problem.code == name)
            #expect(problem.json["attribute"] == "a")
        }
        // Server-side failures: the status and code, never the store's own message.
        let hidden: [(StoreError.Code, HTTPResponse.Status, String)] = [
            (.closed, .serviceUnavailable, "storeClosed"), (.busy, .serviceUnavailable, "storeBusy"),
            (.storage, .internalServerError, "storage"), (.incompatibleSchema, .internalServerError, "storage"),
        ]
        for (code, status, name) in hidden {
            let problem = ProblemMiddleware<BasicRequestContext>.problem(for: StoreError(code, "secret internals"))
            #expect(problem.status == status, "\(code)")
            #expect(problem.code == name)
            #expect(!problem.detail.contains("secret internals"))
        }
        struct Unexpected: Error {}
        let other = ProblemMiddleware<BasicRequestContext>.problem(for: Unexpected())
        #expect(other.status == .internalServerError)
        #expect(other.json["status"] == 500)
        #expect(other.json["code"] == "internal")
    }
}
