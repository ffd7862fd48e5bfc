import Foundation
public import NIOCore

/// The JetStream API of a NATS server, over a ``NATSClient``: streams, durable pull consumers,
/// publishing with a receipt, fetching batches and acknowledging them.
///
/// Every call is a request to a `$JS.API.…` subject whose answer is JSON: an error in it becomes
/// a ``NATSJetStreamError`` with the server's words, and a server without JetStream answers
/// nobody (``NATSError/Kind/noResponders``).
public struct NATSJetStream: Sendable {
    public let client: NATSClient
    /// The API's subject prefix (another with a JetStream domain).
    public let prefix: String
    /// How long an API call waits for its answer.
    public let timeout: Duration

    public init(client: NATSClient, prefix: String = "$JS.API", timeout: Duration = .seconds(5)) {
        self.client = client
        self.prefix = prefix
        self.timeout = timeout
    }

    // MARK: Streams

    /// Creates the stream, or returns it when one of that name exists with the same
    /// configuration (one with another configuration is an error: see ``updateStream(_:)``).
    public func createStream(_ configuration: NATSStreamConfiguration) async throws -> NATSStreamInfo {
        try Self.checkName(configuration.name, "stream")
        return try await call("STREAM.CREATE.\(configuration.name)", configuration)
    }

    /// Changes a stream's configuration (what the server lets change: limits, subjects, replicas).
    public func updateStream(_ configuration: NATSStreamConfiguration) async throws -> NATSStreamInfo {
        try Self.checkName(configuration.name, "stream")
        return try await call("STREAM.UPDATE.\(configuration.name)", configuration)
    }

    /// The stream's configuration and state.
    public func streamInfo(_ name: String) async throws -> NATSStreamInfo {
        try Self.checkName(name, "stream")
        return try await call("STREAM.INFO.\(name)", Empty())
    }

    /// Deletes the stream and everything in it.
    public func deleteStream(_ name: String) async throws {
        try Self.checkName(name, "stream")
        let _: Success = try await call("STREAM.DELETE.\(name)", Empty())
    }

    /// Deletes the message `sequence` from `stream` (its bytes overwritten on disk unless
    /// `erase` is false): for tests of what a lost message does, and for removing one by hand.
    public func deleteMessage(stream: String, sequence: UInt64, erase: Bool = false) async throws {
        try Self.checkName(stream, "stream")
        let _: Success = try await call("STREAM.MSG.DELETE.\(stream)", MessageDelete(seq: sequence, noErase: erase ? nil : true))
    }

    /// The latest message of `subject` in `stream`, or `nil` when the stream holds none: with a
    /// stream that keeps one message per subject, the current value of a key.
    public func lastMessage(stream: String, subject: String) async throws -> NATSStoredMessage? {
        try Self.checkName(stream, "stream")
        do {
            let answer: StoredMessageAnswer = try await call("STREAM.MSG.GET.\(stream)", LastBySubject(subject: subject))
            return answer.message
        } catch let error as NATSJetStreamError where error.code == 404 {
            return nil
        }
    }

    private struct LastBySubject: Encodable {
        var subject: String
        enum CodingKeys: String, CodingKey { case subject = "last_by_subj" }
    }

    private struct StoredMessageAnswer: Decodable {
        var message: NATSStoredMessage
    }

    private struct MessageDelete: Encodable {
        var seq: UInt64
        var noErase: Bool?
        enum CodingKeys: String, CodingKey { case seq, noErase = "no_erase" }
    }

    // MARK: Consumers

    /// Creates a durable pull consumer of `stream`, or returns it when it exists with the same
    /// configuration.
    public func createConsumer(stream: String, _ configuration: NATSConsumerConfiguration) async throws -> NATSConsumerInfo {
        try Self.checkName(stream, "stream")
        try Self.checkName(configuration.durableName, "consumer")
        return try await call(
            "CONSUMER.DURABLE.CREATE.\(stream).\(configuration.durableName)", ConsumerRequest(stream: stream, config: configuration))
    }

    /// The consumer's configuration and position.
    public func consumerInfo(stream: String, name: String) async throws -> NATSConsumerInfo {
        try Self.checkName(stream, "stream")
        try Self.checkName(name, "consumer")
        return try await call("CONSUMER.INFO.\(stream).\(name)", Empty())
    }

    /// Deletes the consumer (its position is gone with it).
    public func deleteConsumer(stream: String, name: String) async throws {
        try Self.checkName(stream, "stream")
        try Self.checkName(name, "consumer")
        let _: Success = try await call("CONSUMER.DELETE.\(stream).\(name)", Empty())
    }

    // MARK: Messages

    /// Publishes `payload` to `subject` and waits until a stream has stored it. With
    /// `messageID` (sent as `Nats-Msg-Id`), a second publish of the same id within the stream's
    /// duplicate window is not stored again: the receipt says `duplicate` and gives the first
    /// copy's sequence, so a publish can be retried safely.
    public func publish(
        _ subject: String, payload: ByteBuffer, messageID: String? = nil, headers: NATSHeaders? = nil
    ) async throws
        -> NATSPublishAck
    {
        try await send(publish: subject, payload: payload, messageID: messageID, headers: headers).value()
    }

    /// Sends a publish now and returns its receipt to come: publishes sent one after the
    /// other from one task are stored in that order, and many can be in flight at once.
    public func send(
        publish subject: String, payload: ByteBuffer, messageID: String? = nil, headers: NATSHeaders? = nil
    ) throws
        -> NATSPendingPublish
    {
        var headers = headers ?? NATSHeaders()
        if let messageID { headers["Nats-Msg-Id"] = messageID }
        let pending = try client.send(request: subject, payload: payload, headers: headers.fields.isEmpty ? nil : headers, timeout: timeout)
        return NATSPendingPublish(subject: subject, request: pending)
    }

    /// Up to `batch` messages of a durable pull consumer, waiting at most `expires` for them
    /// to arrive: fewer (or none) when the consumer has no more in that time. With
    /// `noWait`, only what is there now.
    public func fetch(
        stream: String, consumer: String, batch: Int, expires: Duration = .seconds(1), noWait: Bool = false
    )
        async throws -> [NATSJetStreamMessage]
    {
        try Self.checkName(stream, "stream")
        try Self.checkName(consumer, "consumer")
        guard batch >= 1 else { throw NATSError(.invalid, "a fetch takes at least one message, got \(batch)") }
        let inbox = client.inboxPrefix + ".fetch." + NATSClient.randomToken()
        let subscription = try client.subscribe(inbox)
        defer { subscription.unsubscribe() }
        let request = PullRequest(batch: batch, expires: noWait ? nil : expires.nanoseconds, noWait: noWait ? true : nil)
        try client.publish("\(prefix).CONSUMER.MSG.NEXT.\(stream).\(consumer)", payload: Self.encode(request), replyTo: inbox)
        // The server ends a pull that got fewer than `batch` with a 408 when it expires; the
        // client's own deadline only guards against a server that never says so.
        let deadline = (noWait ? .zero : expires) + timeout
        return try await withThrowingTaskGroup(of: [NATSJetStreamMessage].self) { group in
            group.addTask {
                var messages: [NATSJetStreamMessage] = []
                for try await message in subscription {
                    switch message.status {
                    case nil:
                        guard let jetStream = NATSJetStreamMessage(message, client: client) else {
                            throw NATSError(.invalid, "a pulled message without JetStream's reply subject (\(message.replyTo ?? "none"))")
                        }
                        messages.append(jetStream)
                        if messages.count == batch { return messages }
                    case 100?:
                        continue  // an idle heartbeat
                    case 404?, 408?:
                        return messages  // no (more) messages; the pull expired
                    case let status?:
                        if !messages.isEmpty { return messages }
                        let words = message.headers?.statusDescription ?? ""
                        throw NATSJetStreamError(code: status, errorCode: 0, message: words.isEmpty ? "the pull was refused" : words)
                    }
                }
                return messages
            }
            group.addTask {
                try await Task.sleep(for: deadline)
                throw NATSError(
                    .timeout, "a fetch from \(stream)/\(consumer) got no end within \(deadline) (does \(stream)/\(consumer) exist?)")
            }
            defer { group.cancelAll() }
            return try await group.next() ?? []
        }
    }

    // MARK: Internals

    private struct Empty: Encodable {}
    private struct Success: Decodable {}

    private struct ConsumerRequest: Encodable {
        var stream: String
        var config: NATSConsumerConfiguration
        enum CodingKeys: String, CodingKey { case stream = "stream_name", config }
    }

    private struct PullRequest: Encodable {
        var batch: Int
        var expires: Int64?
        var noWait: Bool?
        enum CodingKeys: String, CodingKey { case batch, expires, noWait = "no_wait" }
    }

    private struct ErrorAnswer: Decodable {
        struct Body: Decodable {
            var code: Int
            var errorCode: Int?
            var description: String?
            enum CodingKeys: String, CodingKey { case code, errorCode = "err_code", description }
        }
        var error: Body?
    }

    private func call<Request: Encodable, Answer: Decodable>(_ api: String, _ request: Request) async throws -> Answer {
        let body = request is Empty ? ByteBuffer() : try Self.encode(request)
        let answer: NATSMessage
        do {
            answer = try await client.request("\(prefix).\(api)", payload: body, timeout: timeout)
        } catch let error as NATSError where error.kind == .noResponders {
            throw NATSError(.noResponders, "no JetStream answers on \(prefix) (is the server started with JetStream on?)")
        }
        return try Self.decode(answer)
    }

    static func encode(_ value: some Encodable) throws -> ByteBuffer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return ByteBuffer(data: try encoder.encode(value))
    }

    static func decode<Answer: Decodable>(_ message: NATSMessage) throws -> Answer {
        let data = Data(message.payload.readableBytesView)
        if let failure = try? JSONDecoder().decode(ErrorAnswer.self, from: data), let error = failure.error {
            throw NATSJetStreamError(code: error.code, errorCode: error.errorCode ?? 0, message: error.description ?? "no description")
        }
        do {
            return try JSONDecoder().decode(Answer.self, from: data)
        } catch {
            throw NATSError(
                .invalid, "JetStream's answer is not a \(Answer.self): \(error); it was: \(String(decoding: data.prefix(300), as: UTF8.self))")
        }
    }

    /// Stream and consumer names go into subjects: one token, no wildcards.
    static func checkName(_ name: String, _ what: String) throws {
        if NATSSubject.tokenProblem(name) != nil || name.contains(where: { $0 == "/" || $0 == "\\" }) {
            throw NATSError(.invalid, "a \(what) name must be one token without '.', '*', '>', spaces or slashes, got '\(name)'")
        }
    }
}

extension ByteBuffer {
    fileprivate init(data: Data) {
        self.init(bytes: data)
    }
}
