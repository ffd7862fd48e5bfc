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
    /// ``servesCachedReads(_:)`` per table position: asked on every event-loop cache hit, decided once.
    private let cachedReadsByTable: [Bool]
    private let directPutsByTable: [Bool]
    private let directPostsByTable: [Bool]
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
        self.cachedReadsByTable = store.tables.map { table in
            byIndex[table.index]?.get == nil && (roles?.allows(.read, table, for: .anonymous) ?? true)
                && (roles?.hidden(table, for: .anonymous) ?? []).isEmpty
        }
        self.directPutsByTable = store.tables.map { table in
            byIndex[table.index]?.put == nil && Self.anonymousWritesWholly(table, [.insert, .update], roles: roles)
        }
        self.directPostsByTable = store.tables.map { table in
            byIndex[table.index]?.post == nil && Self.anonymousWritesWholly(table, [.insert], roles: roles)
        }
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
            guard let table = store.table(anyName: name) else { return false }
            return allows(verb, table, for: principal)
        case .superUser: return false
        }
    }

    /// Refuses with ``AccessDenied`` (worded "… may not `action`") unless `principal` holds `permission`.
    public func authorize(_ permission: Permission, to action: @autoclosure () -> String, for principal: Principal) throws(AccessDenied) {
        guard allows(permission, for: principal) else { throw AccessDenied(action: action(), principal: principal) }
    }

    /// Whether a record of `table` may be answered from the cache to an anonymous client: the
    /// table shows stored records as they are, the anonymous role may read it and sees every attribute.
    public func servesCachedReads(_ table: TableLayout) -> Bool {
        cachedReadsByTable[table.index]
    }

    /// Whether an anonymous `PUT` of a record of `table` may be run straight from the event loop:
    /// the table has no `put` hook (the write touches nothing but its transaction), and the
    /// anonymous role may insert and update it, write every attribute and see every attribute.
    /// ``put(_:_:body:precondition:for:request:)`` then does exactly what the router's `PUT` does.
    public func servesDirectPuts(_ table: TableLayout) -> Bool {
        directPutsByTable[table.index]
    }

    /// The same for an anonymous `POST` to `table`'s collection: no `post` hook, and the anonymous
    /// role may insert, write every attribute and see every attribute.
    public func servesDirectPosts(_ table: TableLayout) -> Bool {
        directPostsByTable[table.index]
    }

    /// Whether the anonymous role may `verbs` records of `table`, writing and seeing every
    /// attribute in doing so (always, when no roles are declared).
    private static func anonymousWritesWholly(_ table: TableLayout, _ verbs: [TableVerb], roles: Roles?) -> Bool {
        guard let roles else { return true }
        return roles.hidden(table, for: .anonymous).isEmpty
            && verbs.allSatisfy { verb in
                roles.allows(verb, table, for: .anonymous) && roles.unwritable(table, verb, for: .anonymous).isEmpty
                    && roles.hidden(table, for: .anonymous, verb: verb).isEmpty
            }
    }

    /// The attributes of `table` `principal` may not see (`roles.yaml`'s `hide`) when it reads (or,
    /// with `verb`, subscribes to) the table.
    public func hidden(_ table: TableLayout, for principal: Principal, verb: TableVerb = .read) -> Set<String> {
        roles?.hidden(table, for: principal, verb: verb) ?? []
    }

    /// The attributes of `table` `principal` may not see around a write in `verb`: those hidden when
    /// it reads and those hidden by the roles granting `verb`.
    func invisible(_ table: TableLayout, _ verb: TableVerb, for principal: Principal) -> Set<String> {
        guard let roles else { return [] }
        return roles.hidden(table, for: principal).union(roles.hidden(table, for: principal, verb: verb))
    }

    /// The attributes of `table` `principal` may not write in a `verb` (`hide` and `readOnly`).
    public func unwritable(_ table: TableLayout, _ verb: TableVerb, for principal: Principal) -> Set<String> {
        roles?.unwritable(table, verb, for: principal) ?? []
    }

    /// Whether what `principal` reads of `table` is the stored record as it is: no `get` hook and
    /// no hidden attribute.
    public func showsStoredRecords(_ table: TableLayout, to principal: Principal, verb: TableVerb = .read) -> Bool {
        showsStoredRecords(table) && hidden(table, for: principal, verb: verb).isEmpty
    }

    /// Refuses a query of `table` by `principal` that filters or sorts on `paths` or selects
    /// `selected` when it reaches what the principal may not see: an attribute hidden from it (here,
    /// or in a related table a path goes through, or the key a relationship is stored in), a related
    /// table it may not read, or a join (a selected relationship) into a table that hides attributes
    /// from it, since joined records are answered whole.
    ///
    /// What is hidden in `table` itself is what the roles granting `verb` hide (`subscribe` for a
    /// standing query); in related tables, what the roles granting `read` hide.
    public func checkQueried(
        paths: [[String]], selected: [[String]] = [], _ table: TableLayout, verb: TableVerb = .read, for principal: Principal
    ) throws(AccessDenied) {
        guard roles != nil else { return }
        for path in paths { try reach(path, from: table, verb: verb, for: principal, joining: false) }
        for path in selected { try reach(path, from: table, verb: verb, for: principal, joining: true) }
    }

    /// Follows `path` from `table` through relationships, refusing what `principal` may not see.
    private func reach(_ path: [String], from table: TableLayout, verb: TableVerb, for principal: Principal, joining: Bool) throws(AccessDenied) {
        var current = table
        for (step, name) in path.enumerated() {
            let hidden = hidden(current, for: principal, verb: step == 0 ? verb : .read)
            let display = TableDirectory.displayName(current)
            if !joining || step < path.count - 1, hidden.contains(name) {
                throw AccessDenied(action: "filter or sort \(display) records by \(name)", principal: principal)
            }
            guard let attribute = current.definition.attributes.first(where: { $0.name == name }), let relationship = attribute.relationship,
                let target = relatedTable(attribute)
            else { return }
            if case .from(let key) = relationship, hidden.contains(key) {
                throw AccessDenied(action: "follow \(display).\(name), which is stored in \(key)", principal: principal)
            }
            try authorize(.read, target, for: principal)
            if joining, step == path.count - 1, !self.hidden(target, for: principal).isEmpty {
                throw AccessDenied(
                    action:
                        "select whole \(TableDirectory.displayName(target)) records through \(display).\(name) (some of their attributes are hidden)",
                    principal: principal)
            }
            current = target
        }
    }

    /// The table a relationship attribute's records come from.
    private func relatedTable(_ attribute: AttributeDefinition) -> TableLayout? {
        var type = attribute.type
        while case .list(let element) = type { type = element }
        guard case .object(let typeName) = type else { return nil }
        return store.table(typeName: typeName)
    }

    /// Refuses a write of `body` naming an attribute `principal` may not write in a `verb`.
    func checkWritable(
        _ body: JSONObject, _ table: TableLayout, _ verb: TableVerb, unwritable: Set<String>, for principal: Principal
    )
        throws(AccessDenied)
    {
        guard !unwritable.isEmpty else { return }
        for key in body.keys where unwritable.contains(key) { throw Self.writeDenied(key, table, principal) }
    }

    /// The refusal of a write naming attribute `key` of `table` that `principal` may not write.
    private static func writeDenied(_ key: String, _ table: TableLayout, _ principal: Principal) -> AccessDenied {
        AccessDenied(action: "write \(TableDirectory.displayName(table)).\(key)", principal: principal)
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

    /// `request` with `principal` set: what a hook is given.
    private static func stamped(_ request: ResourceRequest, _ principal: Principal) -> ResourceRequest {
        var request = request
        request.principal = principal
        return request
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
        return try shown(record, table: table, for: principal, request: request())
    }

    /// `record` of `table` as `principal` sees it: the `get` hook's answer without the attributes
    /// hidden from it.
    public func shown(
        _ record: CachedRecord, table: TableLayout, for principal: Principal, request: @autoclosure () -> ResourceRequest
    ) throws
        -> CachedRecord
    {
        let hidden = hidden(table, for: principal)
        guard !hidden.isEmpty else { return try shown(record, table: table, request: Self.stamped(request(), principal)) }
        let object = try shown(record.record, table: table, for: principal, request: request())
        return CachedRecord(id: record.id, record: object, json: ByteBuffer(bytes: JSONWriter.encode(.object(object))), version: record.version)
    }

    /// `record` without the attributes of `table` hidden from `principal`: what a write (`verb`
    /// `insert` or `update`) answers with (the stored record, as the `get` hook does not run on
    /// writes). Hidden are those the roles granting `read` hide and those the roles granting `verb`
    /// hide: a role that may update but not read still sees nothing it hides.
    public func withoutHidden(_ record: CachedRecord, table: TableLayout, verb: TableVerb, for principal: Principal) -> CachedRecord {
        let hidden = invisible(table, verb, for: principal)
        guard !hidden.isEmpty else { return record }
        var object = record.record
        for attribute in hidden { object[attribute] = nil }
        return CachedRecord(id: record.id, record: object, json: ByteBuffer(bytes: JSONWriter.encode(.object(object))), version: record.version)
    }

    /// The record `object` of `table` as `principal` sees it, for rows of a query and events.
    public func shown(
        _ object: JSONObject, table: TableLayout, for principal: Principal, verb: TableVerb = .read, request: @autoclosure () -> ResourceRequest
    ) throws -> JSONObject {
        var shown = try shown(object, table: table, request: Self.stamped(request(), principal))
        for attribute in hidden(table, for: principal, verb: verb) { shown[attribute] = nil }
        return shown
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
    ///
    /// `paths` are those the query filters or sorts on and `selected` those it selects: see
    /// ``checkQueried(paths:selected:_:verb:for:)``.
    public func checkSearch(
        _ table: TableLayout, _ verb: TableVerb = .read, paths: [[String]] = [], selected: [[String]] = [], for principal: Principal,
        request: @autoclosure () -> ResourceRequest
    ) throws {
        try authorize(verb, table, for: principal)
        try checkQueried(paths: paths, selected: selected, table, verb: verb, for: principal)
        if let hook = hooksByTable[table.index]?.search { try hook(Self.stamped(request(), principal)) }
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
        // Attributes the principal may not write: naming one is refused; on a replace, the stored
        // values of those it leaves out are kept (a PUT cannot erase what it may not see or write).
        let unwritableOnInsert = mayInsert ? unwritable(table, .insert, for: principal) : []
        let unwritableOnUpdate = mayUpdate ? unwritable(table, .update, for: principal) : []
        // What a replace keeps: what it may not write, and what it may not see (by another role).
        let invisibleOnUpdate = mayUpdate ? invisible(table, .update, for: principal) : []
        let keptOnUpdate = unwritableOnUpdate.union(hidden(table, for: principal))
        let limited = !unwritableOnInsert.isEmpty || !keptOnUpdate.isEmpty
        let allowed: @Sendable (_ created: Bool) throws(AccessDenied) -> Void = { created throws(AccessDenied) in
            if created ? !mayInsert : !mayUpdate { throw AccessDenied(verb: created ? .insert : .update, table: table, principal: principal) }
        }
        let kept: @Sendable (_ body: JSONObject, _ current: CachedRecord?) throws(AccessDenied) -> JSONObject = {
            body, current throws(AccessDenied) in
            let unwritable = current == nil ? unwritableOnInsert : unwritableOnUpdate
            // Naming one is refused unless it repeats a stored value the principal may see (a GET,
            // edit, PUT round trip); a hidden one is refused whatever its value, lest the answer
            // tell whether a guess was right.
            for key in body.keys where unwritable.contains(key) {
                guard current == nil || invisibleOnUpdate.contains(key) || current?.record[key] != body[key] else { continue }
                throw Self.writeDenied(key, table, principal)
            }
            guard let current else { return body }
            var merged = body
            for attribute in keptOnUpdate where body[attribute] == nil || unwritable.contains(attribute) {
                merged[attribute] = current.record[attribute]
            }
            return merged
        }
        guard let hook = hooksByTable[table.index]?.put else {
            // No hook: the work touches nothing but the transaction (see Store.write(database:replayable:_:)).
            return try await store.write(database: table.definition.database, replayable: true) { txn in
                if limited {
                    let current = try txn.get(table, id)
                    try allowed(current == nil)
                    let record = try txn.put(table, id: id, body: try kept(body, current), precondition: precondition)
                    return (record, current == nil)
                }
                if !(mayInsert && mayUpdate) { try allowed(try txn.get(table, id) == nil) }
                // One read of the current record: `replace` reports what it found.
                let (record, previous) = try txn.replace(table, id: id, body: body, precondition: precondition)
                return (record, previous == nil)
            }
        }
        var body = body
        let pk = table.definition.primaryKeyAttribute.name
        if body[pk] == nil { body[pk] = id.jsonValue }
        let info = Self.stamped(request(), principal)
        return try await store.write(database: table.definition.database) { [body] txn in
            let current = try txn.get(table, id)
            try allowed(current == nil)
            try precondition.check(current, table: table.name, id: id)
            let shaped = try hook(try kept(body, current), current?.record, txn, info)
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
        try checkWritable(patch, table, .update, unwritable: unwritable(table, .update, for: principal), for: principal)
        guard let hook = hooksByTable[table.index]?.patch else {
            return try await store.write(database: table.definition.database, replayable: true) { txn in
                try txn.patch(table, id: id, patch: patch, precondition: precondition)
            }
        }
        let info = Self.stamped(request(), principal)
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
        try checkWritable(body, table, .insert, unwritable: unwritable(table, .insert, for: principal), for: principal)
        guard let hook = hooksByTable[table.index]?.post else {
            return try await store.write(database: table.definition.database, replayable: true) { txn in try txn.insert(table, body: body) }
        }
        let info = Self.stamped(request(), principal)
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
            return try await store.write(database: table.definition.database, replayable: true) { txn in
                try txn.delete(table, id: id, precondition: precondition)
            }
        }
        let info = Self.stamped(request(), principal)
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
