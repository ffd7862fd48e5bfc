import Foundation
import HTTPTypes
import HummingbirdTesting
import MicrolithHTTP
import MicrolithJSON
import MicrolithRealtime
import Testing

/// Which requests the middleware turns into SSE subscriptions on a live server: a `GET` asking
/// for `text/event-stream` on an exported table's URL, and nothing else.
@Suite(.timeLimit(.minutes(1))) struct EventStreamMiddlewareTests {
    @Test func aGetAskingForAnEventStreamOnATableURLIsASubscription() async throws {
        try await withSubscriptionServer { server in
            try await server.putTodo("a")
            let connection = try await server.subscribe("/Todo/")
            let text = connection.text
            let head = try #require(text.components(separatedBy: "\r\n\r\n").first).lowercased()
            #expect(head.hasPrefix("http/1.1 200 ok"))
            #expect(head.contains("content-type: text/event-stream"))
            #expect(head.contains("cache-control: no-cache"))
            #expect(head.contains("x-accel-buffering: no"))
            #expect(head.contains("transfer-encoding: chunked"))
            #expect(text.contains("event: subscribed\ndata: {\"type\":\"subscribed\""))
            #expect(server.hub.subscriptionCount == 1)
        }
    }

    @Test func otherRequestsOnTableURLsAreREST() async throws {
        try await withSubscriptionServer { server in
            try await server.putTodo("a")
            // No Accept: text/event-stream: the REST answer.
            let list = try await server.client.execute(uri: "/Todo/", method: .get, headers: [.accept: "application/json"])
            #expect(list.status == .ok)
            #expect(list.headers[.contentType] == "application/json")
            #expect(list.json().arrayValue?.count == 1)
            // Not a GET: REST too, whatever it accepts.
            let put = try await server.client.execute(
                uri: "/Todo/b", method: .put, headers: [.accept: "text/event-stream", .contentType: "application/json"],
                body: json(#"{"title":"b"}"#))
            #expect(put.status == .created)
            let head = try await server.client.execute(uri: "/Todo/a", method: .head, headers: [.accept: "text/event-stream"])
            #expect(head.status == .ok)
            #expect(head.headers[.contentType] == "application/json")
            #expect(server.hub.subscriptionCount == 0)
        }
    }

    @Test func anEventStreamRequestOffATableURLIsLeftToTheRouter() async throws {
        try await withSubscriptionServer { server in
            let health = try await server.client.execute(uri: "/health", method: .get, headers: [.accept: "text/event-stream"])
            #expect(health.status == .ok)
            #expect(health.headers[.contentType] != "text/event-stream")
            for path in ["/Hidden/", "/nothing/here/at/all"] {
                let response = try await server.client.execute(uri: path, method: .get, headers: [.accept: "text/event-stream"])
                response.expectProblem(.notFound)
            }
            #expect(server.hub.subscriptionCount == 0)
        }
    }

    @Test func aRejectedSubscriptionIsAProblemNotAStream() async throws {
        try await withSubscriptionServer { server in
            let response = try await server.client.execute(
                uri: "/Todo/", method: .get, headers: [.accept: "text/event-stream", HTTPField.Name("Last-Event-ID")!: "x"])
            let problem = response.expectProblem(.badRequest)
            #expect(problem["detail"]?.stringValue?.contains("Last-Event-ID") == true)
            #expect(server.hub.subscriptionCount == 0)
        }
    }
}
