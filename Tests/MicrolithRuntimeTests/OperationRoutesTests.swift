import HTTPTypes
import HummingbirdTesting
import MicrolithHTTP
import MicrolithJSON
import MicrolithRuntime
import NIOCore
import Testing

/// `POST /_operations/{module}/{operation}` on a live server: JSON in and out, an
/// `OperationError` as problem+json with its status and code, the body rules, and the operations
/// in `/openapi.json`.
@Suite(.timeLimit(.minutes(1))) struct OperationRoutesTests {
    let json: HTTPFields = [.contentType: "application/json"]

    @Test func anOperationAnswersJSON() async throws {
        try await withLiveServer { _, client in
            let response = try await client.execute(
                uri: "/_operations/desk/greet", method: .post, headers: json, body: jsonBody(#"{"name":"ann"}"#))
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json")
            #expect(response.json() == ["text": "hello ann"])
        }
    }

    @Test func anOperationErrorKeepsItsStatusAndCode() async throws {
        try await withLiveServer { _, client in
            let empty = try await client.execute(uri: "/_operations/desk/greet", method: .post, headers: json, body: jsonBody(#"{"name":""}"#))
            #expect(empty.expectProblem(.badRequest, code: "badRequest")["detail"] == "a name is needed")
            let nobody = try await client.execute(
                uri: "/_operations/desk/greet", method: .post, headers: json, body: jsonBody(#"{"name":"nobody"}"#))
            #expect(nobody.expectProblem(.notFound, code: "notFound")["detail"] == "no one is called nobody")
        }
    }

    @Test func unknownModulesAndOperationsAre404() async throws {
        try await withLiveServer { _, client in
            let module = try await client.execute(uri: "/_operations/till/greet", method: .post, headers: json, body: jsonBody("{}"))
            let detail = module.expectProblem(.notFound, code: "unknownOperation")["detail"]?.stringValue ?? ""
            #expect(detail.contains("no module named 'till'"), "\(detail)")
            let operation = try await client.execute(uri: "/_operations/desk/shout", method: .post, headers: json, body: jsonBody("{}"))
            let listed = operation.expectProblem(.notFound, code: "unknownOperation")["detail"]?.stringValue ?? ""
            #expect(listed.contains("has no operation 'shout'") && listed.contains("file, greet"), "\(listed)")
        }
    }

    @Test func aModuleThatRunsElsewhereIsNotServedHere() async throws {
        try await withLiveServer(roles: ["api"]) { _, client in
            let response = try await client.execute(
                uri: "/_operations/desk/greet", method: .post, headers: json, body: jsonBody(#"{"name":"ann"}"#))
            response.expectProblem(.notFound, code: "unknownOperation")
        }
    }

    @Test func theBodyMustBeTheOperationsJSON() async throws {
        try await withLiveServer(configure: { $0.http.maximumBodyBytes = 1024 }) { _, client in
            let path = "/_operations/desk/greet"
            let text = try await client.execute(uri: path, method: .post, headers: [.contentType: "application/xml"], body: jsonBody("<name/>"))
            #expect(text.status == .unsupportedMediaType, "\(String(buffer: text.body))")
            let broken = try await client.execute(uri: path, method: .post, headers: json, body: jsonBody(#"{"name":"#))
            broken.expectProblem(.badRequest, code: "badRequest")
            let wrongType = try await client.execute(uri: path, method: .post, headers: json, body: jsonBody(#"{"name":12}"#))
            let detail = wrongType.expectProblem(.badRequest, code: "badRequest")["detail"]?.stringValue ?? ""
            #expect(detail.contains("not a valid GreetRequest"), "\(detail)")
            // No body is an empty object: here a GreetRequest without its name.
            let none = try await client.execute(uri: path, method: .post, headers: json)
            none.expectProblem(.badRequest, code: "badRequest")
            let big = try await client.execute(
                uri: path, method: .post, headers: json, body: jsonBody(#"{"name":"\#(String(repeating: "a", count: 2000))"}"#))
            #expect(big.status == .contentTooLarge)
        }
    }

    @Test func theOpenAPIDocumentDescribesEachOperation() async throws {
        try await withLiveServer { _, client in
            let document = try await client.execute(uri: "/openapi.json", method: .get).json()
            let greet = document["paths"]?["/_operations/desk/greet"]?["post"]
            #expect(greet?["operationId"] == "desk_greet")
            #expect(greet?["tags"] == ["desk"])
            #expect(greet?["responses"]?["200"] != nil && greet?["responses"]?["400"] != nil)
            #expect(document["paths"]?["/_operations/desk/file"]?["post"]?["operationId"] == "desk_file")
        }
    }
}
