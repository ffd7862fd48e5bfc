public import MicrolithJSON
public import MicrolithStore
public import NIOCore

/// One change-log entry as it travels between nodes: which node made it, where it stands in
/// that node's log, and the record after the write.
///
/// On the wire it is a JSON object: `node`, `database`, `seq`, `txn`, `table`, `id` (a string
/// or an integer, as the key is), `op` (`put`, `patch`, `delete`), `version` (the write's
/// hybrid logical clock timestamp), `record` (the record's JSON, `null` for a delete) and
/// `schema` (the table's ``TableLayout/replicationDigest`` on the origin: a node whose table
/// differs does not apply the change), after a PATCH `stamps` (``RecordStamps``: when each
/// attribute was written), and `prev`, the sequence of the origin's entry published before this
/// one (its log also holds other nodes' writes, so its own sequences have holes): a receiver
/// that did not get that one knows it missed something. A message may hold several entries of
/// one node's log, in order, as a JSON array of these objects (``entries(json:)``).
public struct ReplicatedChange: Sendable, Equatable {
    public var node: String
    public var database: String
    /// The entry's sequence in its node's change log of `database`.
    public var sequence: Int64
    public var transaction: Int64
    public var table: String
    public var id: RecordID
    public var operation: Change.Operation
    public var version: Int64
    /// The record after the write; `nil` for a delete.
    public var record: JSONObject?
    /// The table's ``TableLayout/replicationDigest`` on the origin.
    public var schema: String
    /// When each attribute of ``record`` was written, where that is not simply ``version`` on
    /// ``node``.
    public var stamps: RecordStamps?
    /// The sequence of the origin's own entry published before this one (0: none; `nil`: not
    /// known, the log was trimmed past it).
    public var previous: Int64?

    public init(
        node: String, database: String, sequence: Int64, transaction: Int64, table: String, id: RecordID, operation: Change.Operation,
        version: Int64, record: JSONObject?, schema: String, stamps: RecordStamps? = nil, previous: Int64? = nil
    ) {
        self.node = node
        self.database = database
        self.sequence = sequence
        self.transaction = transaction
        self.table = table
        self.id = id
        self.operation = operation
        self.version = version
        self.record = record
        self.schema = schema
        self.stamps = stamps
        self.previous = previous
    }

    /// The entry of `change`, a change of `database` made on `node` to a table whose
    /// ``TableLayout/replicationDigest`` is `schema`.
    public init(_ change: Change, node: String, database: String, schema: String, previous: Int64? = nil) {
        self.init(
            node: node, database: database, sequence: change.sequence, transaction: change.transaction, table: change.tableName,
            id: change.id, operation: change.operation, version: change.version, record: change.record?.record, schema: schema,
            stamps: change.stamps, previous: previous)
    }

    /// The `Nats-Msg-Id` of the entry sent alone: the same on every publish of it, so JetStream
    /// drops a retry (within the stream's duplicate window) instead of storing it twice (a retry
    /// that gathers other entries into its message has another id, and is stored again). It holds the
    /// transaction id beside the sequence: a database restored from a backup, or made anew under
    /// the same node name, numbers its entries again from an earlier sequence, and its new
    /// writes must not pass for retries of the old ones.
    public var messageID: String { "\(node):\(database):\(sequence):\(transaction)" }

    /// The `Nats-Msg-Id` of a message holding the own entries `first` to `last` of one node's
    /// log: `node:database:sequence:transaction` of the first, then `:sequence:transaction` of the last.
    public static func messageID(first: ReplicatedChange, last: ReplicatedChange) -> String {
        "\(first.messageID):\(last.sequence):\(last.transaction)"
    }

    /// Reads a message's entries: one entry's object, or an array of them (a batch the publisher
    /// sent as one message), or says what is wrong with it.
    public static func entries(json bytes: ByteBuffer) throws(ReplicationError) -> [ReplicatedChange] {
        var entries: [ReplicatedChange] = []
        for result in try entryResults(json: bytes) { entries.append(try result.get()) }
        return entries
    }

    /// Reads a message's entries one by one: an entry that cannot be read does not keep the
    /// others of its message from being read. Throws when the message is not JSON, or neither an
    /// object nor a non-empty array.
    public static func entryResults(json bytes: ByteBuffer) throws(ReplicationError) -> [Result<ReplicatedChange, ReplicationError>] {
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes.readableBytesView)
        } catch {
            throw ReplicationError("a replicated change is not JSON: \(error)")
        }
        guard case .array(let items) = value else { return [Result { () throws(ReplicationError) in try ReplicatedChange(jsonValue: value) }] }
        guard !items.isEmpty else { throw ReplicationError("a message of replicated changes holds none") }
        return items.map { item in Result { () throws(ReplicationError) in try ReplicatedChange(jsonValue: item) } }
    }

    /// The JSON object, as bytes.
    public var json: ByteBuffer { ByteBuffer(bytes: JSONWriter.encode(jsonValue)) }

    /// The JSON object.
    public var jsonValue: JSONValue {
        var o = JSONObject()
        o["node"] = .string(node)
        o["database"] = .string(database)
        o["seq"] = .int(sequence)
        o["txn"] = .int(transaction)
        o["table"] = .string(table)
        o["id"] = id.jsonValue
        o["op"] = .string(operation.rawValue)
        o["version"] = .int(version)
        o["record"] = record.map { .object($0) } ?? .null
        o["schema"] = .string(schema)
        if let stamps { o["stamps"] = stamps.json }
        if let previous { o["prev"] = .int(previous) }
        return .object(o)
    }

    /// Reads an entry, or says what is wrong with it.
    public init(json bytes: ByteBuffer) throws(ReplicationError) {
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes.readableBytesView)
        } catch {
            throw ReplicationError("a replicated change is not JSON: \(error)")
        }
        try self.init(jsonValue: value)
    }

    /// Reads an entry from its JSON object, or says what is wrong with it.
    public init(jsonValue value: JSONValue) throws(ReplicationError) {
        guard case .object(let o) = value else { throw ReplicationError("a replicated change is not a JSON object") }
        func string(_ key: String) throws(ReplicationError) -> String {
            guard case .string(let s)? = o[key], !s.isEmpty else { throw ReplicationError("a replicated change lacks its '\(key)'") }
            return s
        }
        func int(_ key: String) throws(ReplicationError) -> Int64 {
            guard case .int(let n)? = o[key] else { throw ReplicationError("a replicated change lacks its '\(key)' number") }
            return n
        }
        let id: RecordID
        switch o["id"] {
        case .string(let s)?: id = .string(s)
        case .int(let n)?: id = .int(n)
        default: throw ReplicationError("a replicated change lacks its 'id' (a string or an integer)")
        }
        guard let operation = Change.Operation(rawValue: try string("op")) else {
            throw ReplicationError("a replicated change has an unknown 'op' (put, patch or delete)")
        }
        var record: JSONObject?
        switch o["record"] {
        case .object(let r)?: record = r
        case .null?, nil: record = nil
        default: throw ReplicationError("a replicated change's 'record' is neither an object nor null")
        }
        if operation != .delete && record == nil { throw ReplicationError("a replicated \(operation.rawValue) carries no record") }
        var previous: Int64?
        switch o["prev"] {
        case .int(let n)? where n >= 0: previous = n
        case nil, .null?: previous = nil
        default: throw ReplicationError("a replicated change's 'prev' is not a sequence number")
        }
        var stamps: RecordStamps?
        if let value = o["stamps"], !value.isNull {
            guard let parsed = RecordStamps(json: value) else {
                throw ReplicationError("a replicated change's 'stamps' is not {\"base\":[version,\"node\"],\"attributes\":{…}}")
            }
            stamps = parsed
        }
        self.init(
            node: try string("node"), database: try string("database"), sequence: try int("seq"), transaction: try int("txn"),
            table: try string("table"), id: id, operation: operation, version: try int("version"), record: record,
            schema: try string("schema"), stamps: stamps, previous: previous)
    }
}
