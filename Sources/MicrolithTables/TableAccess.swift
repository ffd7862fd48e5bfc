public import MicrolithJSON
import MicrolithSchema
public import MicrolithStore
import NIOCore

/// The one place a table's records are read and written on behalf of a client, whichever door
/// the request came through (REST, the event-loop fast path, subscriptions, MQTT): it runs the
/// application's ``TableHooks`` around the store's own validation, so a hook written once holds on
/// every door.
///
/// Each method takes the request as an autoclosure: it is built only when the table has a hook
/// that reads it.
public struct TableAccess: Sendable {
    /// The exported tables and the grammar of their URLs and topics.
    public let directory: TableDirectory
    /// The store.
    public var store: Store { directory.store }
    private let hooksByTable: [TableHooks?]
    /// What each role may do; `nil` when the application declares no roles (every table is then
    /// open to every client, as before roles existed).
    public let roles: Roles?

    /// Access to `store`'s tables with the application's table `hooks` (each names its table by
    /// GraphQL type name or table name; one naming no table is ignored, as the modules check that)
    /// and `roles` (`nil`: no permission checks).
    public init(store: Store, hooks: [TableHooks] = [], roles: Roles? = nil) {
        var byIndex = [TableHooks?](repeating: nil, count: store.tables.count)
        for h in hooks {
            if let t = store.table(typeName: h.table) ?? store.table(name: h.table) { byIndex[t.index] = h }
        }
        self.hooksByTable = byIndex
        self.directory = TableDirectory(store: store)
        self.roles = roles
    }

    // MARK: Permissions

    /// Whether `principal` may `verb` records of `table` (always, when no roles are declared).
    public func allows(_ verb: TableVerb, _ table: TableLayout, for principal: Principal) -> Bool {
        roles?.allows(verb, table, for: principal) ?? true
    }

    /// Refuses with ``AccessDenied`` unless `principal` may `verb` records of `table`.
    public func authorize(_ verb: TableVerb, _ table: TableLayout, for principal: Principal) throws(AccessDenied) {
        guard allows(verb, table, for: principal) else { throw AccessDenied(verb: verb, table: table, principal: principal) }
    }

    /// Whether `principal` holds `permission`. A super user holds every one; declared permissions
    /// hold with or without `roles.yaml` (only table permissions are open without it).
    public func allows(_ permission: Permission, for principal: Principal) -> Bool {
        if principal.roles.contains(where: { roles?.isSuperUser($0) ?? ($0 == Roles.superUser) }) { return true }
        switch permission {
        case .anyone: return true
        case .signedIn: return principal.user != nil
        case .role(let names): return !names.isDisjoint(with: principal.roles)
        case .table(let name, let verb):
            guard let table = store.table(exportName: name) ?? store.table(typeName: name) ?? store.table(name: name) else { return false }
            return allows(verb, table, for: principal)
        case .superUser: return false
        }
    }

    /// Refuses with ``AccessDenied`` (worded "… may not `action`") unless `principal` holds `permission`.
    public func authorize(_ permission: Permission, to action: @autoclosure () -> String, for principal: Principal) throws(AccessDenied) {
        guard allows(permission, for: principal) else { throw AccessDenied(action: action(), principal: principal) }
    }

    /// Whether a record of `table` may be answered from the cache to an anonymous client: the
    /// table shows stored records as they are and the anonymous role may read it.
    public func servesCachedReads(_ table: TableLayout) -> Bool {
        showsStoredRecords(table) && allows(.read, table, for: .anonymous)
    }

    /// The hooks of `table`, if it has any.
    public func hooks(_ table: TableLayout) -> TableHooks? {
        hooksByTable[table.index]
    }

    /// Whether what a client reads of `table` is the stored record as it is (no `get` hook):
    /// such a record may be answered straight from the cache, and events carry it unchanged.
    public func showsStoredRecords(_ table: TableLayout) -> Bool {
        hooksByTable[table.index]?.get == nil
    }

    // MARK: Reads

    /// Record `id` as the client sees it (after the `get` hook), from the record cache when it holds
    /// it; `nil` when there is no such record.
    public func get(
        _ table: TableLayout, _ id: RecordID, for principal: Principal, request: @autoclosure () -> ResourceRequest
    ) async throws -> CachedRecord? {
        try authorize(.read, table, for: principal)
        let record: CachedRecord?
        switch store.cachedGet(table, id) {
        case .present(let r): record = r
        case .absent: record = nil
        case nil: record = try await store.get(table, id)
        }
        guard let record else { return nil }
        return try shown(record, table: table, request: request())
    }

    /// `record` of `table` as the client of `request` sees it: the `get` hook's answer, or the record itself.
    public func shown(_ record: CachedRecord, table: TableLayout, request: @autoclosure () -> ResourceRequest) throws -> CachedRecord {
        guard let hook = hooksByTable[table.index]?.get else { return record }
        let shown = try hook(record.record, request())
        return CachedRecord(id: record.id, record: shown, json: ByteBuffer(bytes: JSONWriter.encode(.object(shown))), version: record.version)
    }

    /// The record `object` of `table` as the client of `request` sees it (the `get` hook), for rows of a query.
    public func shown(_ object: JSONObject, table: TableLayout, request: @autoclosure () -> ResourceRequest) throws -> JSONObject {
        guard let hook = hooksByTable[table.index]?.get else { return object }
        return try hook(object, request())
    }

    /// Before a query of `table` (or a standing one, a subscription: `verb` `subscribe`): refuses
    /// unless `principal` may `verb` the table, then runs the `search` hook, which refuses by throwing.
    public func checkSearch(
        _ table: TableLayout, _ verb: TableVerb = .read, for principal: Principal, request: @autoclosure () -> ResourceRequest
    ) throws {
        try authorize(verb, table, for: principal)
        if let hook = hooksByTable[table.index]?.search { try hook(request()) }
    }

    // MARK: Writes

    /// Replaces (or creates) record `id` of `table` with `body`, through the `put` hook; returns
    /// the stored record and whether it was created.
    public func put(
        _ table: TableLayout, _ id: RecordID, body: JSONObject, precondition: WritePrecondition = .none, for principal: Principal,
        request: @autoclosure () -> ResourceRequest
    ) async throws -> (record: CachedRecord, created: Bool) {
        // Creating needs `insert`, replacing `update`: with one of the two, the write checks which it is.
        let mayInsert = allows(.insert, table, for: principal)
        let mayUpdate = allows(.update, table, for: principal)
        guard mayInsert || mayUpdate else { throw AccessDenied(verb: .update, table: table, principal: principal) }
        let allowed: @Sendable (_ created: Bool) throws(AccessDenied) -> Void = { created throws(AccessDenied) in
            if created ? !mayInsert : !mayUpdate { throw AccessDenied(verb: created ? .insert : .update, table: table, principal: principal) }
        }
        guard let hook = hooksByTable[table.index]?.put else {
            return try await store.write(database: table.definition.database) { txn in
                if !(mayInsert && mayUpdate) { try allowed(try txn.get(table, id) == nil) }
                // One read of the current record: `replace` reports what it found.
                let (record, previous) = try txn.replace(table, id: id, body: body, precondition: precondition)
                return (record, previous == nil)
            }
        }
        var body = body
        let pk = table.definition.primaryKeyAttribute.name
        if body[pk] == nil { body[pk] = id.jsonValue }
        let info = request()
        return try await store.write(database: table.definition.database) { [body] txn in
            let current = try txn.get(table, id)
            try allowed(current == nil)
            try precondition.check(current, table: table.name, id: id)
            let shaped = try hook(body, current?.record, txn, info)
            return (try txn.put(table, id: id, body: shaped, precondition: precondition), current == nil)
        }
    }

    /// Merges `patch` into record `id` of `table` (RFC 7396), through the `patch` hook; `nil` when
    /// there is no such record.
    public func patch(
        _ table: TableLayout, _ id: RecordID, patch: JSONObject, precondition: WritePrecondition = .none, for principal: Principal,
        request: @autoclosure () -> ResourceRequest
    ) async throws -> CachedRecord? {
        try authorize(.update, table, for: principal)
        guard let hook = hooksByTable[table.index]?.patch else {
            return try await store.write(database: table.definition.database) { txn in
                try txn.patch(table, id: id, patch: patch, precondition: precondition)
            }
        }
        let info = request()
        return try await store.write(database: table.definition.database) { txn -> CachedRecord? in
            let current = try txn.get(table, id)
            try precondition.check(current, table: table.name, id: id)
            guard let current else { return nil }
            let merged = try hook(WriteTransaction.merge(current.record, patch), current.record, txn, info)
            return try txn.put(table, id: id, body: merged, precondition: precondition)
        }
    }

    /// Creates a record of `table` from `body` (the key generated when it has none), through the `post` hook.
    public func post(
        _ table: TableLayout, body: JSONObject, for principal: Principal, request: @autoclosure () -> ResourceRequest
    ) async throws -> CachedRecord {
        try authorize(.insert, table, for: principal)
        guard let hook = hooksByTable[table.index]?.post else {
            return try await store.write(database: table.definition.database) { txn in try txn.insert(table, body: body) }
        }
        let info = request()
        return try await store.write(database: table.definition.database) { txn in
            try txn.insert(table, body: try hook(body, nil, txn, info))
        }
    }

    /// Deletes record `id` of `table`, through the `delete` hook; returns whether it existed.
    public func delete(
        _ table: TableLayout, _ id: RecordID, precondition: WritePrecondition = .none, for principal: Principal,
        request: @autoclosure () -> ResourceRequest
    ) async throws -> Bool {
        try authorize(.delete, table, for: principal)
        guard hooksByTable[table.index]?.delete != nil else {
            return try await store.write(database: table.definition.database) { txn in
                try txn.delete(table, id: id, precondition: precondition)
            }
        }
        let info = request()
        return try await store.write(database: table.definition.database) { txn in
            try delete(table, id, precondition: precondition, in: txn, request: info)
        }
    }

    /// Deletes record `id` of `table` inside `txn`, through the `delete` hook; returns whether it
    /// existed. For deletes that are part of a larger transaction (a `DELETE` of a query's matches),
    /// whose caller has checked the `delete` permission.
    public func delete(
        _ table: TableLayout, _ id: RecordID, precondition: WritePrecondition = .none, in txn: WriteTransaction,
        request: @autoclosure () -> ResourceRequest
    ) throws -> Bool {
        if let hook = hooksByTable[table.index]?.delete, let current = try txn.get(table, id) {
            try precondition.check(current, table: table.name, id: id)
            try hook(current.record, txn, request())
        }
        return try txn.delete(table, id: id, precondition: precondition)
    }
}
