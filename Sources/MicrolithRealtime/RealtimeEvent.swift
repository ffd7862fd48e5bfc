public import MicrolithJSON
public import MicrolithStore
public import NIOCore
import Synchronization

/// One event of a subscription: a committed write, a message, or a note about the subscription.
///
/// Events are shared between every subscriber they reach, with their JSON encoded once
/// (``json``), inside the Server-Sent Events frame that carries it (``sseFrame``): one buffer for
/// both. The WebSocket frame that carries it (``webSocketFrame``) is made once too, when the
/// first WebSocket subscriber needs it.
public final class RealtimeEvent: Sendable {
    /// What happened.
    public enum Kind: String, Sendable {
        /// A committed write (the record after it is ``value``).
        case put, patch, delete
        /// A message published to a record, not stored.
        case message
        /// The record as it is when a record subscription starts.
        case current
        /// The subscription is live; ``sequence`` is the change-log position it starts after.
        case subscribed
        /// The resume position is older than the retained change log: some changes were missed.
        case reload
        /// The subscriber fell too far behind and is being dropped.
        case overflow
        /// Nothing happened for a while (transports send a keep-alive; never encoded).
        case keepAlive
    }

    public let kind: Kind
    /// The table's name (absent for ``Kind/subscribed``, ``Kind/reload`` and ``Kind/overflow``).
    public let table: String?
    /// The table's position in ``Store/tables``.
    public let tableIndex: Int?
    /// The record's key.
    public let id: RecordID?
    /// The change-log sequence (writes), or the subscription's start position (``Kind/subscribed``, ``Kind/reload``).
    public let sequence: Int64?
    /// The write's version (hybrid logical clock timestamp).
    public let version: Int64?
    /// The record after a write (`nil` for deletes and absent records), or a message's JSON value.
    public let value: JSONValue?
    /// A message's bytes as published, or the record's JSON for writes (empty for deletes).
    public let payload: ByteBuffer
    /// The event as one JSON object, ready to send.
    public let json: ByteBuffer
    /// The event as a Server-Sent Events frame: `id:` (the sequence of a write), `event:` (the
    /// kind) and ``json`` as its `data:`; a comment for ``Kind/keepAlive``. ``json`` is a view of
    /// the same bytes.
    public let sseFrame: ByteBuffer
    /// The WebSocket text frame carrying ``json`` (unmasked, as a server sends it), made by the first
    /// WebSocket subscriber that needs it and shared by the others.
    private let encodedWebSocketFrame = Mutex<ByteBuffer?>(nil)

    /// The event as one WebSocket text frame, header and ``json``: encoded once for every
    /// WebSocket subscriber it reaches.
    public var webSocketFrame: ByteBuffer {
        encodedWebSocketFrame.withLock { frame in
            if let frame { return frame }
            let length = json.readableBytes
            var out = ByteBuffer()
            out.reserveCapacity(length + 10)
            out.writeInteger(UInt8(0x81))  // FIN, text
            if length < 126 {
                out.writeInteger(UInt8(length))
            } else if length <= Int(UInt16.max) {
                out.writeInteger(UInt8(126))
                out.writeInteger(UInt16(length))
            } else {
                out.writeInteger(UInt8(127))
                out.writeInteger(UInt64(length))
            }
            out.writeImmutableBuffer(json)
            frame = out
            return out
        }
    }

    /// What the event counts against a subscriber's byte buffer: the size of ``json``.
    public var byteCount: Int { json.readableBytes }

    init(
        kind: Kind, table: String?, tableIndex: Int?, id: RecordID?, sequence: Int64?, version: Int64?, value: JSONValue?,
        payload: ByteBuffer, extra: [(String, JSONValue)] = []
    ) {
        self.kind = kind
        self.table = table
        self.tableIndex = tableIndex
        self.id = id
        self.sequence = sequence
        self.version = version
        self.value = value
        self.payload = payload
        var out = ByteBuffer()
        out.reserveCapacity(96 + payload.readableBytes)
        if kind != .keepAlive {
            if let sequence, kind == .put || kind == .patch || kind == .delete {
                out.writeStaticString("id: ")
                out.writeString(String(sequence))
                out.writeStaticString("\n")
            }
            out.writeStaticString("event: ")
            out.writeString(kind.rawValue)
            out.writeStaticString("\ndata: ")
        }
        let start = out.writerIndex
        out.writeStaticString("{\"type\":\"")
        out.writeString(kind.rawValue)
        out.writeStaticString("\"")
        var bytes: [UInt8] = []
        func field(_ name: String, _ v: JSONValue) {
            bytes.removeAll(keepingCapacity: true)
            JSONWriter.write(v, into: &bytes)
            out.writeString(",\"\(name)\":")
            out.writeBytes(bytes)
        }
        if let table { field("table", .string(table)) }
        if let id { field("id", id.jsonValue) }
        if let sequence { field(kind == .subscribed || kind == .reload ? "position" : "seq", .int(sequence)) }
        if let version { field("version", .int(version)) }
        for (name, v) in extra { field(name, v) }
        switch kind {
        case .put, .patch, .delete, .current:
            out.writeStaticString(",\"value\":")
            if value == nil || kind == .delete {
                out.writeStaticString("null")
            } else {
                out.writeImmutableBuffer(payload)
            }
        case .message:
            field("value", value ?? .null)
        default:
            break
        }
        out.writeStaticString("}")
        let length = out.writerIndex - start
        if kind == .keepAlive {
            self.sseFrame = ByteBuffer(staticString: ": keep-alive\n\n")
        } else {
            // Written before the slice is taken: the two then share one storage, uncopied.
            out.writeStaticString("\n\n")
            self.sseFrame = out
        }
        self.json = out.getSlice(at: start, length: length)!
    }

    /// A committed write, as the store reports it (or its change log reads it back, on resume).
    convenience init(change: Change) {
        self.init(
            kind: Kind(change.operation), table: change.tableName, tableIndex: change.table, id: change.id, sequence: change.sequence,
            version: change.version, value: change.record.map { .object($0.record) }, payload: change.record?.json ?? ByteBuffer())
    }

    /// A message published to a record: `payload` as sent, `value` its JSON reading (a string when it is not JSON).
    static func message(table: String, tableIndex: Int, id: RecordID, payload: ByteBuffer) -> RealtimeEvent {
        let value: JSONValue
        if payload.readableBytes == 0 {
            value = .null
        } else if let parsed = try? JSONParser.parse(payload.readableBytesView) {
            value = parsed
        } else {
            value = .string(String(buffer: payload))
        }
        return RealtimeEvent(
            kind: .message, table: table, tableIndex: tableIndex, id: id, sequence: nil, version: nil, value: value, payload: payload)
    }

    /// The record when a record subscription starts.
    static func current(table: TableLayout, id: RecordID, record: CachedRecord?) -> RealtimeEvent {
        RealtimeEvent(
            kind: .current, table: table.name, tableIndex: table.index, id: id, sequence: nil, version: record?.version,
            value: record.map { .object($0.record) }, payload: record?.json ?? ByteBuffer())
    }

    /// This event with `record` in place of the record it carries (a table's `get` hook shows
    /// each subscriber its own view of a record); the same event when it carries none.
    public func showing(_ record: JSONObject) -> RealtimeEvent {
        guard value != nil, kind == .put || kind == .patch || kind == .current else { return self }
        return RealtimeEvent(
            kind: kind, table: table, tableIndex: tableIndex, id: id, sequence: sequence, version: version, value: .object(record),
            payload: ByteBuffer(bytes: JSONWriter.encode(.object(record))))
    }

    /// The copy of a write a query subscriber gets when the record stops matching: a delete.
    func leaving() -> RealtimeEvent {
        RealtimeEvent(
            kind: .delete, table: table, tableIndex: tableIndex, id: id, sequence: sequence, version: version, value: nil,
            payload: ByteBuffer(), extra: [("reason", .string("no longer matches the query"))])
    }

    static func subscribed(position: Int64) -> RealtimeEvent {
        RealtimeEvent(kind: .subscribed, table: nil, tableIndex: nil, id: nil, sequence: position, version: nil, value: nil, payload: ByteBuffer())
    }

    /// `reason` defaults to what is wrong with `position` in `bounds`.
    static func reload(position: Int64, bounds: ChangeLogBounds, reason: String? = nil) -> RealtimeEvent {
        let reason =
            reason
            ?? (position > bounds.latest
                ? "position \(position) is ahead of the change log (latest \(bounds.latest)); re-read the data"
                : "position \(position) is older than the retained change log (oldest \(bounds.oldest ?? bounds.latest + 1)); re-read the data")
        return RealtimeEvent(
            kind: .reload, table: nil, tableIndex: nil, id: nil, sequence: position, version: nil, value: nil, payload: ByteBuffer(),
            extra: [("oldest", bounds.oldest.map { .int($0) } ?? .null), ("reason", .string(reason))])
    }

    static let keepAlive = RealtimeEvent(
        kind: .keepAlive, table: nil, tableIndex: nil, id: nil, sequence: nil, version: nil, value: nil, payload: ByteBuffer())

    static func overflow(reason: String) -> RealtimeEvent {
        RealtimeEvent(
            kind: .overflow, table: nil, tableIndex: nil, id: nil, sequence: nil, version: nil, value: nil, payload: ByteBuffer(),
            extra: [("reason", .string(reason))])
    }
}

extension RealtimeEvent.Kind {
    /// The event a committed write of `operation` makes.
    init(_ operation: Change.Operation) {
        switch operation {
        case .put: self = .put
        case .patch: self = .patch
        case .delete: self = .delete
        }
    }
}
