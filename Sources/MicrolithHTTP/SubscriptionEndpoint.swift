import Foundation
import HTTPTypes
public import Hummingbird
public import HummingbirdWebSocket
import Logging
public import MicrolithAuth
import MicrolithJSON
import MicrolithQuery
public import MicrolithRealtime
import MicrolithSchema
import MicrolithStore
public import MicrolithTables
public import NIOCore
import NIOHTTPTypes
public import NIOWebSocket
import ServiceLifecycle
import Synchronization

/// Subscriptions over HTTP: Server-Sent Events (`Accept: text/event-stream`) and WebSocket
/// upgrades on table URLs (`/T/id`, `/T/`, `/T/prefix/`, `/T/?query`).
///
/// Each connection's events are written on its event loop as the hub delivers them (one task per
/// loop per commit, whatever the number of subscribers: see `RealtimeFrameWriter`), each event
/// encoded once for all its subscribers. A connection takes writes while NIO holds less than its
/// 64 KiB write-buffer high-water mark unsent, so what a client does not read waits in the
/// subscription's buffer, bounded in events and bytes. A client that falls behind that buffer gets
/// `overflow`; once a subscription has ended the connection has ``closeGrace`` to send what
/// remains, then it is closed regardless.
public struct SubscriptionEndpoint: Sendable {
    public let hub: EventHub
    public let tables: TableEndpoint
    /// Seconds between SSE keep-alive comments.
    public var heartbeatSeconds: Int
    /// How long a connection may take, once its subscription has ended (`overflow`, shutdown), to
    /// send the rest (the `overflow` event, the close frame, the end of the stream) before it is
    /// closed at once: a client that does not read cannot hold it, or its buffers, any longer.
    public var closeGrace: Duration

    /// Where subscriptions of signed-in users are registered, so that a change to their user ends
    /// them (a WebSocket with an `error` event and close code 4401, an event stream by its end).
    public var sessions: LiveSessions?

    public init(hub: EventHub, tables: TableEndpoint, heartbeatSeconds: Int = 15, closeGrace: Duration = .seconds(5)) {
        self.hub = hub
        self.tables = tables
        self.heartbeatSeconds = heartbeatSeconds
        self.closeGrace = closeGrace
    }

    /// What a subscription URL asks for, and the position to resume after.
    public struct Request: Sendable {
        public var target: SubscriptionTarget
        public var position: Int64?
        /// What the table's hooks see of the subscribing request.
        public var client: ResourceRequest
        /// Who subscribes (the request's authenticated principal): the permissions checked.
        public var principal: Principal
        /// The version of the user the principal's credentials were checked against
        /// (``Authenticator/Verified/checked``): a change to the user since ends the subscription.
        public var checkedSince: Int64? = LiveSessions.checkedSince
    }

    /// Whether the request asks for an event stream.
    public static func wantsEventStream(_ fields: HTTPFields) -> Bool {
        guard let accept = fields[.accept] else { return false }
        // Asked of every request the fast path sees: read in place, no lowercased copy.
        return ASCIIBytes.contains(accept.utf8, lowercase: "text/event-stream")
    }

    /// Reads the subscription a URL asks for; throws a ``Problem`` (404 unknown table, 400 bad id,
    /// query or position).
    public func request(path: String, query rawQuery: String?, lastEventID: String? = nil, headers: [String: String] = [:]) throws -> Request {
        // The position is the subscription's, not part of the query.
        var queryItems: [Substring] = []
        var positionText = lastEventID
        for item in (rawQuery ?? "").split(separator: "&") where !item.isEmpty {
            if item.hasPrefix("lastEventId=") {
                positionText = String(item.dropFirst("lastEventId=".count))
            } else if item.hasPrefix("access_token=") {
                // Credentials (read by the authentication), not part of the query.
                continue
            } else {
                queryItems.append(item)
            }
        }
        let raw = queryItems.joined(separator: "&")
        let target = try tables.directory.target(path: path, query: Substring(raw))
        var position: Int64?
        if let positionText {
            guard let p = Int64(positionText.trimmingCharacters(in: .whitespaces)), p >= 0 else {
                throw Problem(
                    .badRequest, "the resume position (Last-Event-ID / lastEventId) must be a change-log sequence number ≥ 0, got '\(positionText)'")
            }
            position = p
        }
        let table = target.table
        let client = ResourceRequest(method: "GET", path: path, query: raw.isEmpty ? nil : raw, headers: headers)
        let principal = Principal.current
        switch target.selection {
        case .record(let id) where target.query == nil:
            return Request(target: .record(table, id), position: position, client: client, principal: principal)
        case .prefix(let prefix) where target.query == nil:
            return Request(target: .prefix(table, prefix), position: position, client: client, principal: principal)
        case .collection where target.query == nil:
            return Request(target: .table(table), position: position, client: client, principal: principal)
        case .record, .prefix:
            throw Problem(.badRequest, "a query subscription names the table only: /\(target.name)/?\(raw)")
        case .collection:
            guard raw.utf8.count <= tables.configuration.maximumQueryLength else {
                throw Problem(.uriTooLong, "the query string is \(raw.utf8.count) bytes; the limit is \(tables.configuration.maximumQueryLength)")
            }
            let query = try QueryParser.parse(raw).bound(to: table.definition, schema: tables.store.schema)
            for path in Self.paths(query.filter) {
                if let attribute = table.definition.attributes.first(where: { $0.name == path.first }), attribute.relationship != nil {
                    throw Problem(
                        .badRequest, "subscriptions filter on the record's own attributes; '\(path.joined(separator: "."))' is a relationship")
                }
            }
            return Request(target: .query(table, query), position: position, client: client, principal: principal)
        }
    }

    /// Subscribes to what `wanted` asks for, through the table's hooks: a table, prefix or query
    /// subscription is a standing query, so the `search` hook may refuse it; a record subscription
    /// is a standing read, so the `get` hook may refuse the record as it is now.
    func subscribe(_ wanted: Request) async throws -> RealtimeSubscription {
        // Credentials checked against a user since changed (by another process, within the
        // authenticator's memory) are refused now, not let in and ended at the next audit.
        if let sessions, let since = wanted.checkedSince, let reason = try await sessions.outdated(wanted.principal, since: since) {
            throw Problem(
                .unauthorized, reason, code: "unauthorized", headers: [.wwwAuthenticate: AuthenticationMiddleware<MicrolithRequestContext>.challenge])
        }
        let access = tables.access
        let table = wanted.target.table
        switch wanted.target {
        case .record(_, let id):
            try access.authorize(.subscribe, table, for: wanted.principal)
            if !access.showsStoredRecords(table), let current = try await access.store.get(table, id) {
                _ = try access.shown(current, table: table, for: wanted.principal, request: wanted.client)
            }
        case .query(_, let query):
            try access.checkSearch(table, .subscribe, paths: query.namedPaths, for: wanted.principal, request: wanted.client)
        case .table, .prefix:
            try access.checkSearch(table, .subscribe, for: wanted.principal, request: wanted.client)
        }
        return try await hub.subscribe(wanted.target, after: wanted.position)
    }

    /// What a subscriber of `wanted` is shown of each event: the record after the table's `get`
    /// hook (an event whose record the hook refuses is not sent), without the attributes hidden
    /// from the subscriber; `nil` when neither applies and every event goes out as it is.
    func shaper(_ wanted: Request) -> (@Sendable (RealtimeEvent) -> RealtimeEvent?)? {
        let access = tables.access
        let table = wanted.target.table
        let principal = wanted.principal
        guard !access.showsStoredRecords(table, to: principal, verb: .subscribe) else { return nil }
        let client = wanted.client
        let logger = hub.logger
        return { event in
            guard case .object(let record)? = event.value, event.kind == .put || event.kind == .patch || event.kind == .current else {
                return event
            }
            do {
                return event.showing(try access.shown(record, table: table, for: principal, verb: .subscribe, request: client))
            } catch {
                if !TableAccess.isRefusal(error) {
                    logger.error("the get hook of \(table.name) failed on \(event.id.map { "\($0)" } ?? "?"): \(error)")
                }
                return nil
            }
        }
    }

    private static func paths(_ condition: Condition?) -> [[String]] {
        switch condition {
        case nil: return []
        case .and(let terms)?, .or(let terms)?: return terms.flatMap { paths($0) }
        case .compare(let c)?: return [c.path]
        }
    }

    // MARK: Server-Sent Events

    static let lastEventID = HTTPField.Name("Last-Event-ID")!

    /// The event-stream response for `request`: events as they come, a keep-alive comment every
    /// ``heartbeatSeconds``, ended by an `overflow` or by the client going away. After an
    /// `overflow` the connection is closed ``closeGrace`` later, whatever the client has read; after
    /// a shutdown, only when the client has not taken the end of the stream by then.
    ///
    /// - Parameter channel: the request's connection, which the events are written to.
    public func eventStream(_ request: Hummingbird.Request, channel: any Channel) async throws -> Response {
        let wanted = try self.request(
            path: request.uri.path, query: request.uri.query, lastEventID: request.headers[Self.lastEventID],
            headers: TableEndpoint.headers(request.headers))
        let subscription = try await subscribe(wanted)
        let shape = shaper(wanted)
        let heartbeat = heartbeatSeconds
        let grace = closeGrace
        let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache", HTTPField.Name("X-Accel-Buffering")!: "no"]
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { [sessions] writer in
                // A change to the user ends the stream; an EventSource reconnects, signing in again.
                let ticket = sessions?.register(wanted.principal, since: wanted.checkedSince) { _ in subscription.cancel() }
                defer {
                    sessions?.unregister(ticket)
                    subscription.cancel()
                }
                // A graceful shutdown ends the stream, so the server does not wait for it forever.
                try await withGracefulShutdownHandler {
                    try await Self.streamEvents(
                        subscription, on: channel, to: WriterHandoff(writer: writer), shape: shape, heartbeat: heartbeat, closeGrace: grace)
                } onGracefulShutdown: {
                    subscription.cancel()
                }
            })
    }

    /// Takes the response body writer to the task that ends the stream, while the handler's task
    /// only waits for that task: one user at a time, so the hand-over is safe although a
    /// `ResponseBodyWriter` need not be `Sendable`.
    private struct WriterHandoff: @unchecked Sendable {
        let writer: any ResponseBodyWriter
    }

    /// Thrown when a connection still has not sent the rest ``closeGrace`` after its subscription
    /// ended: the server then closes it.
    struct ClientNotReading: Error {}

    /// Writes the events on the connection's event loop (the response's head is already on its
    /// way), then ends the body through `handoff`'s writer. Throwing ``ClientNotReading`` out of
    /// the response body makes the server close the connection.
    ///
    /// After an `overflow` the connection is closed ``closeGrace`` after the subscription ended
    /// even when the end of the stream was written: writing it only hands it to the connection's
    /// buffers, and a client that stopped reading would otherwise hold the connection (a
    /// finished response leaves it open for the next request) and what it buffers.
    private static func streamEvents(
        _ subscription: RealtimeSubscription, on channel: any Channel, to handoff: WriterHandoff,
        shape: (@Sendable (RealtimeEvent) -> RealtimeEvent?)?, heartbeat: Int, closeGrace: Duration
    ) async throws {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                let ending = try await RealtimeFrameWriter<HTTPResponsePart>.run(subscription, on: channel, shape: shape) { event in
                    .body(event.sseFrame)
                }
                let writer = handoff.writer
                try await writer.finish(nil)
                // Overflowed: the close deadline task ends the connection.
                return ending != .overflowed
            }
            group.addTask {
                // Keep-alive comments; cancelled with the stream.
                while !Task.isCancelled {
                    try await Task.sleep(for: .seconds(heartbeat))
                    subscription.keepAlive()
                }
                return false
            }
            group.addTask {
                try await closeDeadline(subscription, grace: closeGrace)
                return false
            }
            while let streamed = try await group.next(), !streamed {}
            group.cancelAll()
        }
    }

    /// Throws ``ClientNotReading`` once `subscription` has been over for `grace`, or
    /// `CancellationError` when cancelled first.
    static func closeDeadline(_ subscription: RealtimeSubscription, grace: Duration) async throws {
        await subscription.ended()
        try await Task.sleep(for: grace)
        throw ClientNotReading()
    }

    // MARK: WebSocket

    /// Serves a WebSocket subscribed to `wanted`: each event is one text frame. A record
    /// subscription accepts `{"type":"publish","value":…}` from the client and publishes it to the record.
    ///
    /// After an `overflow` event the socket is closed with code 1008 (policy violation, reason
    /// "slow consumer"); on shutdown with 1001 (going away). A client that has not taken that
    /// ``closeGrace`` after the subscription ended is cut off: its channel is closed.
    ///
    /// - Parameter channel: the upgraded connection; the events are written to it on its event
    ///   loop, and it is closed at once when the client does not take the end in time.
    public func serveWebSocket(
        _ wanted: Request, channel: any Channel, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, maximumMessageBytes: Int
    ) async throws {
        let subscription = try await subscribe(wanted)
        let revoked = Mutex<String?>(nil)
        let ticket = sessions?.register(wanted.principal, since: wanted.checkedSince) { reason in
            revoked.withLock { $0 = reason }
            subscription.cancel()
        }
        defer {
            sessions?.unregister(ticket)
            subscription.cancel()
        }
        try await withGracefulShutdownHandler {
            try await pump(
                subscription, wanted, channel: channel, inbound: inbound, outbound: outbound, maximumMessageBytes: maximumMessageBytes,
                revoked: { revoked.withLock { $0 } })
        } onGracefulShutdown: {
            subscription.cancel()
        }
    }

    /// Reads the client's messages in a task of its own while the events are written on the
    /// channel's loop; once they end (the subscription ended or overflowed, the connection
    /// closed), sends the close frame through `outbound`, after every event written.
    private func pump(
        _ subscription: RealtimeSubscription, _ wanted: Request, channel: any Channel, inbound: WebSocketInboundStream,
        outbound: WebSocketOutboundWriter, maximumMessageBytes: Int, revoked: @escaping @Sendable () -> String?
    ) async throws {
        let hub = self.hub
        let access = tables.access
        let grace = closeGrace
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                var messages = inbound.messages(maxSize: maximumMessageBytes).makeAsyncIterator()
                while let message = try await messages.next() {
                    let text: String
                    switch message {
                    case .text(let s): text = s
                    case .binary(let b): text = String(buffer: b)
                    }
                    if let reply = Self.clientMessage(text, target: wanted.target, hub: hub, access: access, principal: wanted.principal) {
                        try await outbound.write(.text(reply))
                    }
                }
                subscription.cancel()
            }
            group.addTask {
                do {
                    try await Self.closeDeadline(subscription, grace: grace)
                } catch is ClientNotReading {
                    // The writer stops with the channel, and so does the wait below.
                    channel.close(promise: nil)
                }
            }
            // Each event's frame is encoded once for all its subscribers, and written below the frame encoder.
            let ending = try await RealtimeFrameWriter<ByteBuffer>.run(
                subscription, on: channel, placement: .belowWebSocketEncoder, shape: shaper(wanted)
            ) { event in
                event.kind == .keepAlive ? nil : event.webSocketFrame
            }
            var close = (code: WebSocketErrorCode.goingAway, reason: "the server is shutting down")
            if ending == .overflowed { close = (.policyViolation, "slow consumer") }
            // Ended because the user changed: answered as a refusal (an error event, close 4401).
            if let reason = revoked() {
                let refusal = Self.rejection(Problem(.unauthorized, reason, code: "unauthorized"))
                try? await outbound.write(.text(refusal.json))
                close = (refusal.code, refusal.reason)
            }
            // Nothing is sent when the client closed first.
            try? await outbound.close(close.code, reason: close.reason)
            group.cancelAll()
        }
    }

    /// Handles a frame from a WebSocket client of `principal`; returns an error event to send back, if any.
    static func clientMessage(_ text: String, target: SubscriptionTarget, hub: EventHub, access: TableAccess, principal: Principal) -> String? {
        func error(_ detail: String, status: Int = 400) -> String {
            String(
                decoding: JSONWriter.encode(.object(["type": .string("error"), "status": .int(Int64(status)), "detail": .string(detail)])),
                as: UTF8.self)
        }
        guard case .object(let object)? = try? JSONParser.parse(text) else {
            return error("messages to the server are JSON objects: {\"type\":\"publish\",\"value\":…}")
        }
        guard object["type"] == .string("publish") else {
            return error("the only message a client sends is {\"type\":\"publish\",\"value\":…}")
        }
        guard case .record(let table, let id) = target else {
            return error("messages are published to a record: subscribe to /\(target.table.name)/id to publish")
        }
        do {
            try access.authorize(.publish, table, for: principal)
        } catch let denied {
            // As on REST: without credentials the answer is to sign in (401); with them, 403.
            return error(denied.message, status: denied.principal.user == nil ? 401 : denied.status)
        }
        hub.publish(table: table, id: id, payload: ByteBuffer(bytes: JSONWriter.encode(object["value"] ?? .null)))
        return nil
    }

    /// The text of the error event and close frame a WebSocket gets when its URL names no valid subscription.
    public static func rejection(_ error: any Error) -> (json: String, code: WebSocketErrorCode, reason: String) {
        let problem = ProblemMiddleware<MicrolithRequestContext>.problem(for: error)
        var object = problem.json
        if case .object(var o) = object {
            o["type"] = JSONValue.string("error")
            object = .object(o)
        }
        let code = WebSocketErrorCode(codeNumber: 4000 + Int(problem.status.code))
        return (String(decoding: JSONWriter.encode(object), as: UTF8.self), code, String(problem.detail.prefix(100)))
    }
}
