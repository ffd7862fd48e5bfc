import MicrolithJSON
public import MicrolithStore
public import MicrolithTables

/// A write a table hook sees: the record before it, the transaction it is part of, the request.
public struct WriteHookContext<Record: Codable & Sendable> {
    /// The record as stored before this write; `nil` when it is being created.
    public let previous: Record?
    /// The write's transaction: read and write other records here, enqueue jobs; it all
    /// commits with the write or not at all.
    public let transaction: WriteTransaction
    /// The request (``ResourceRequest/transport`` says which door it came through).
    public let request: ResourceRequest
}

/// Behaviour added to a table on every door (REST, subscriptions, MQTT), in typed form. Each hook may refuse by
/// throwing (an ``OperationError`` picks the status; anything else is a 500).
///
/// ```swift
/// builder.table(TableRef<Product>("Product")) { hooks in
///     hooks.put { product, write in
///         guard product.price >= 0 else { throw OperationError.badRequest("price must be ≥ 0") }
///         var p = product
///         p.slug = p.name.lowercased()            // a computed field
///         return p
///     }
/// }
/// ```
public struct TableHookBuilder<Record: Codable & Sendable> {
    public typealias WriteHook = @Sendable (Record, WriteHookContext<Record>) throws -> Record
    var hooks: TableHooks

    /// Runs on `GET /T/id`, on every record a query returns and on every record a subscriber
    /// (SSE, WebSocket, MQTT) is sent: may change what the client sees
    /// (a computed field) or refuse (throw).
    public mutating func get(_ hook: @escaping @Sendable (Record, ResourceRequest) throws -> Record) {
        hooks.get = { object, request in
            let record = try RecordCoder.decode(Record.self, from: .object(object))
            return try RecordCoder.object(try hook(record, request))
        }
    }

    /// Runs before `GET /T/?query`, and before a table, prefix or query subscription, with the
    /// request: refuse queries by throwing.
    public mutating func search(_ hook: @escaping @Sendable (ResourceRequest) throws -> Void) {
        hooks.search = hook
    }

    /// Runs inside the transaction of `PUT /T/id` (and of a retained MQTT publish to the record's
    /// topic); returns the record to store.
    public mutating func put(_ hook: @escaping WriteHook) { hooks.put = Self.erase(hook) }
    /// Runs inside the transaction of `PATCH /T/id` with the merged record; returns the record to store.
    public mutating func patch(_ hook: @escaping WriteHook) { hooks.patch = Self.erase(hook) }
    /// Runs inside the transaction of `POST /T/` (the key may still be missing: declare it optional
    /// in `Record` to let the store generate it); returns the record to store.
    public mutating func post(_ hook: @escaping WriteHook) { hooks.post = Self.erase(hook) }
    /// Runs `hook` for every write: `PUT`, `PATCH` and `POST`.
    public mutating func write(_ hook: @escaping WriteHook) {
        put(hook)
        patch(hook)
        post(hook)
    }

    /// Runs inside the transaction of `DELETE /T/id` (and of every record a `DELETE /T/?query`
    /// removes) with the record being deleted.
    public mutating func delete(_ hook: @escaping @Sendable (Record, WriteHookContext<Record>) throws -> Void) {
        hooks.delete = { object, txn, request in
            let record = try RecordCoder.decode(Record.self, from: .object(object))
            try hook(record, WriteHookContext(previous: record, transaction: txn, request: request))
        }
    }

    static func erase(_ hook: @escaping WriteHook) -> TableHooks.Write {
        { object, previous, txn, request in
            let record = try RecordCoder.decode(Record.self, from: .object(object))
            let old = try previous.map { try RecordCoder.decode(Record.self, from: .object($0)) }
            return try RecordCoder.object(try hook(record, WriteHookContext(previous: old, transaction: txn, request: request)))
        }
    }
}

extension ModuleBuilder {
    /// Adds behaviour to `table` on every door: validation, computed fields, refusals.
    public mutating func table<Record>(_ table: TableRef<Record>, _ configure: (inout TableHookBuilder<Record>) -> Void) {
        guard !tableHooks.contains(where: { $0.table == table.name }) else {
            problems.append("module '\(module)' declares hooks for table \(table.name) twice")
            return
        }
        var builder = TableHookBuilder<Record>(hooks: TableHooks(table: table.name, module: module))
        configure(&builder)
        tableHooks.append(builder.hooks)
    }
}
