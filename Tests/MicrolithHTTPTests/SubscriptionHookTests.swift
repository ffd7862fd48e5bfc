import Foundation
import HTTPTypes
import HummingbirdTesting
import MicrolithHTTP
import MicrolithJSON
import MicrolithModules
import MicrolithTables
import Testing

/// Subscriptions go through the table's hooks as reads do: the `get` hook shapes (or withholds)
/// every record an event carries, `search` may refuse a standing query, `get` a record subscription.
@Suite(.timeLimit(.minutes(1))) struct SubscriptionHookTests {
    /// Todo hooks: records are shown with `viewer` (the request's `x-viewer` header); the record
    /// `secret` is refused; a query on `title==forbidden` is refused.
    static var hooks: TableHooks {
        var hooks = TableHooks(table: "Todo", module: "test")
        hooks.get = { record, request in
            if record["id"] == "secret" { throw OperationError(status: 403, code: "forbidden", message: "secret is not yours") }
            var shown = record
            shown["viewer"] = .string(request.headers["x-viewer"] ?? "nobody")
            return shown
        }
        hooks.search = { request in
            if request.query?.contains("forbidden") == true { throw OperationError(status: 403, code: "forbidden", message: "no such query") }
        }
        return hooks
    }

    @Test func eventsCarryTheRecordAsTheGetHookShowsIt() async throws {
        try await withSubscriptionServer(hooks: [Self.hooks]) { server in
            let connection = try await server.subscribe("/Todo/", headers: "X-Viewer: ada\r\n")
            try await server.putTodo("one")
            try await server.putTodo("secret")
            try await server.putTodo("two")
            #expect(try await connection.read(for: .seconds(10)) { $0.contains("\"id\":\"two\"") })
            #expect(putIDs(connection.text) == ["one", "two"], "the record the hook refuses is not sent")
            #expect(connection.text.contains(#""viewer":"ada""#), "\(connection.text)")
            #expect(!connection.text.contains("secret"))
        }
    }

    @Test func hooksMayRefuseASubscription() async throws {
        try await withSubscriptionServer(hooks: [Self.hooks]) { server in
            try await server.putTodo("secret")
            let record = try await server.client.execute(uri: "/Todo/secret", method: .get, headers: [.accept: "text/event-stream"])
            #expect(record.expectProblem(.forbidden)["detail"] == "secret is not yours")
            let query = try await server.client.execute(uri: "/Todo/?title==forbidden", method: .get, headers: [.accept: "text/event-stream"])
            #expect(query.expectProblem(.forbidden)["detail"] == "no such query")
            // What the hooks allow still subscribes.
            let allowed = try await server.subscribe("/Todo/?title==fine")
            #expect(!allowed.closed)
        }
    }

    @Test func aRecordSubscriptionStartsWithTheShownRecord() async throws {
        try await withSubscriptionServer(hooks: [Self.hooks]) { server in
            try await server.putTodo("one")
            let connection = try await server.subscribe("/Todo/one", headers: "X-Viewer: bob\r\n")
            let shown = { (text: String) in text.contains("event: current") && text.contains("\"viewer\":\"bob\"") }
            // The current record may have come with the `subscribed` event already.
            let arrived = shown(connection.text) ? true : try await connection.read(for: .seconds(10), until: shown)
            #expect(arrived, "\(connection.text)")
        }
    }
}
