public import NIOCore

/// One thing a client sends a NATS server.
public enum NATSClientOperation: Sendable, Equatable {
    /// `CONNECT`: who the client is, sent once after the server's first `INFO`.
    case connect(NATSConnectOptions)
    /// `PUB`, or `HPUB` when there are headers.
    case publish(subject: String, replyTo: String?, headers: NATSHeaders?, payload: ByteBuffer)
    /// `SUB`: deliver messages of `subject` (wildcards allowed) for `sid`; with a queue group,
    /// each message goes to one member of the group.
    case subscribe(subject: String, queueGroup: String?, sid: String)
    /// `UNSUB`: stop now, or after `after` more messages.
    case unsubscribe(sid: String, after: Int?)
    case ping
    case pong

    /// Why this cannot be sent, or `nil` (subjects, names and headers are checked here, so a
    /// mistake is the caller's error and not a server's `-ERR` that ends the connection).
    public var problem: String? {
        switch self {
        case .connect, .ping, .pong:
            return nil
        case .publish(let subject, let replyTo, let headers, _):
            return NATSSubject.problem(subject, wildcards: false) ?? replyTo.flatMap { NATSSubject.problem($0, wildcards: false) }
                ?? headers?.problem
        case .subscribe(let subject, let queueGroup, let sid):
            return NATSSubject.problem(subject, wildcards: true) ?? queueGroup.flatMap { NATSSubject.nameProblem($0, "queue group") }
                ?? NATSSubject.nameProblem(sid, "subscription id")
        case .unsubscribe(let sid, let after):
            if let after, after < 1 { return "UNSUB takes a positive message count, got \(after)" }
            return NATSSubject.nameProblem(sid, "subscription id")
        }
    }

    /// Writes the operation as it goes on the wire.
    public func encode(into buffer: inout ByteBuffer) {
        switch self {
        case .connect(let options):
            buffer.writeStaticString("CONNECT ")
            buffer.writeString(options.json)
            buffer.writeStaticString("\r\n")
        case .publish(let subject, let replyTo, let headers, let payload):
            if let headers {
                var block = ByteBuffer()
                headers.encode(into: &block)
                buffer.writeStaticString("HPUB ")
                Self.writeSubjects(subject, replyTo, into: &buffer)
                buffer.writeString("\(block.readableBytes) \(block.readableBytes + payload.readableBytes)\r\n")
                buffer.writeImmutableBuffer(block)
            } else {
                buffer.writeStaticString("PUB ")
                Self.writeSubjects(subject, replyTo, into: &buffer)
                buffer.writeString("\(payload.readableBytes)\r\n")
            }
            buffer.writeImmutableBuffer(payload)
            buffer.writeStaticString("\r\n")
        case .subscribe(let subject, let queueGroup, let sid):
            buffer.writeStaticString("SUB ")
            buffer.writeString(subject)
            if let queueGroup { buffer.writeString(" \(queueGroup)") }
            buffer.writeString(" \(sid)\r\n")
        case .unsubscribe(let sid, let after):
            buffer.writeStaticString("UNSUB ")
            buffer.writeString(sid)
            if let after { buffer.writeString(" \(after)") }
            buffer.writeStaticString("\r\n")
        case .ping:
            buffer.writeStaticString("PING\r\n")
        case .pong:
            buffer.writeStaticString("PONG\r\n")
        }
    }

    private static func writeSubjects(_ subject: String, _ replyTo: String?, into buffer: inout ByteBuffer) {
        buffer.writeString(subject)
        buffer.writeStaticString(" ")
        if let replyTo {
            buffer.writeString(replyTo)
            buffer.writeStaticString(" ")
        }
    }
}
