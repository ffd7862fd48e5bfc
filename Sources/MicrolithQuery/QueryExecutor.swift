package import GRDB
public import MicrolithJSON
import MicrolithSchema
public import MicrolithStore

/// One record in a query's answer.
public struct QueryRow: Sendable {
    public var id: RecordID
    /// The record's JSON text when it is returned whole, so it need not be encoded again.
    public var json: String?
    private var parsed: JSONObject?

    /// The record (projected when the query selects). Rows answered straight from SQL keep only
    /// their JSON text; it is parsed here when someone asks.
    public var record: JSONObject {
        if let parsed { return parsed }
        guard let json, case .object(let object)? = try? JSONParser.parse(json) else { return [:] }
        return object
    }

    public init(id: RecordID, record: JSONObject, json: String?) {
        self.id = id
        self.parsed = record
        self.json = json
    }

    /// A row known only by its stored JSON text (parsed lazily by ``record``).
    init(id: RecordID, json: String) {
        self.id = id
        self.json = json
        self.parsed = nil
    }
}

/// A query's answer.
public struct QueryResult: Sendable {
    public var rows: [QueryRow]
    public var plan: QueryPlan
}

/// Answers bound queries against a store: SQLite narrows candidates through indexes, the
/// evaluator checks what SQL could not, then sort, limit and select apply.
public struct QueryExecutor: Sendable {
    public let store: Store
    /// The most records one query may return (a `limit` above it is an error, no limit is capped).
    public var maximumResults: Int

    public init(store: Store, maximumResults: Int = 10_000) {
        self.store = store
        self.maximumResults = maximumResults
    }

    /// Plans `query` (already bound to `table`) without running it.
    public func plan(_ query: Query, table: TableLayout) -> QueryPlan {
        QueryPlanner(table: table).plan(query)
    }

    /// Runs `query` on a read snapshot.
    public func execute(_ query: Query, table: TableLayout) async throws -> QueryResult {
        if let observer = ReadObservation.observer {
            if QueryPredicate.followsRelationships(query, table: table) {
                observer.untracked("a query on \(table.name) follows relationships")
            } else {
                observer.willQuery(table, predicate: QueryPredicate(query.filter))
            }
        }
        let plan = plan(query, table: table)
        return try await store.read(database: table.definition.database) { [self] db in
            try run(query, plan: plan, table: table, db: db)
        }
    }

    /// Runs `query` on a connection the caller holds (inside a write transaction, for example).
    package func run(_ query: Query, plan: QueryPlan, table: TableLayout, db: Database) throws -> QueryResult {
        let resolver = RelationshipResolver(store: store, db: db, root: table)
        var sql = "SELECT id, data FROM \"\(table.sqlName)\""
        var arguments = plan.arguments
        var conditions: [String] = []
        if let w = plan.whereClause { conditions.append("(\(w))") }
        if let expiration = table.definition.expiration {
            // Records past @table(expiration:) are gone for queries, swept or not.
            conditions.append("\"\(table.sqlName)\".version >= ?")
            let now = store.configuration.wallClock()
            arguments.append(Store.versionCutoff(expiration: expiration, now: now).databaseValue)
        }
        if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
        let limitInSQL = plan.sortsInSQL
        if limitInSQL {
            if let order = plan.orderBy { sql += " ORDER BY \(order)" }
            if let limit = query.limit {
                sql += " LIMIT ? OFFSET ?"
                arguments += [Int64(limit.count).databaseValue, Int64(limit.start).databaseValue]
            } else {
                sql += " LIMIT ?"
                arguments.append(Int64(maximumResults + 1).databaseValue)
            }
        }
        var rows: [QueryRow] = []
        let cursor = try Row.fetchCursor(db, sql: sql, arguments: StatementArguments(arguments))
        // Records are parsed only when something here reads them: a residual filter, a sort in
        // Swift, or a projection. Otherwise the stored text goes out as it is.
        let needsRecords = (!plan.isExact && query.filter != nil) || !limitInSQL || query.select != nil
        while let row = try cursor.next() {
            guard let id = TableLayout.recordID(row[0]) else { continue }
            let text: String = row[1]
            guard needsRecords else {
                rows.append(QueryRow(id: id, json: text))
                continue
            }
            guard case .object(let record) = try JSONParser.parse(text) else { continue }
            if !plan.isExact, let filter = query.filter {
                guard QueryEvaluator.matches(filter, record: record, resolve: resolver.resolve) else { continue }
            }
            rows.append(QueryRow(id: id, record: record, json: text))
        }
        if let error = resolver.error { throw error }
        if !limitInSQL {
            // Same order as SQL's `ORDER BY …, id`: the evaluator's total order, ties by key.
            let keys = query.sort
            var decorated = rows.map { row in (row, keys.map { resolver.resolve(row.record, $0.path) }) }
            decorated.sort { a, b in
                for (i, key) in keys.enumerated() {
                    let c = QueryEvaluator.compare(a.1[i], b.1[i])
                    if c != 0 { return key.descending ? c > 0 : c < 0 }
                }
                return a.0.id < b.0.id
            }
            if let error = resolver.error { throw error }
            rows = decorated.map(\.0)
            if let limit = query.limit {
                let start = min(limit.start, rows.count)
                let end = min(limit.end, rows.count)
                rows = Array(rows[start..<max(start, end)])
            }
        }
        if rows.count > maximumResults {
            throw QueryError(
                message: "the query matches more than \(maximumResults) records; narrow it or use limit(n) with n ≤ \(maximumResults)")
        }
        if let select = query.select {
            rows = rows.map { row in
                QueryRow(id: row.id, record: resolver.project(row.record, in: table, select: select), json: nil)
            }
            if let error = resolver.error { throw error }
        }
        return QueryResult(rows: rows, plan: plan)
    }
}

/// Follows `@relationship` attributes while a query runs.
final class RelationshipResolver {
    let store: Store
    let db: Database
    let root: TableLayout
    private(set) var error: (any Error)?
    private var memo: [String: [JSONObject]] = [:]

    init(store: Store, db: Database, root: TableLayout) {
        self.store = store
        self.db = db
        self.root = root
    }

    /// The value at `path` in a record of the queried table, following relationships; an array
    /// when a hop reaches several records.
    func resolve(_ record: JSONObject, _ path: [String]) -> JSONValue {
        resolve(in: root, record, path)
    }

    private func resolve(in table: TableLayout, _ record: JSONObject, _ path: [String]) -> JSONValue {
        guard path.count > 1, let attribute = table.definition.attribute(path[0]), attribute.relationship != nil,
            let target = targetTable(attribute)
        else {
            return QueryEvaluator.defaultResolve(record, path)
        }
        let rest = Array(path.dropFirst())
        let values = relatedRecords(record, in: table, attribute: attribute).map { resolve(in: target, $0, rest) }
        if attribute.type.isList { return .array(values) }
        return values.first ?? .null
    }

    /// Applies `select(...)` to a record of `table`, joining relationships named with `{...}`.
    func project(_ record: JSONObject, in table: TableLayout, select: [SelectItem]) -> JSONObject {
        var out = JSONObject()
        for item in select {
            guard let attribute = table.definition.attribute(item.name), attribute.relationship != nil,
                let target = targetTable(attribute)
            else {
                if let v = record[item.name] { out[item.name] = v }
                continue
            }
            let related = relatedRecords(record, in: table, attribute: attribute).map { r -> JSONValue in
                .object(item.children.map { project(r, in: target, select: $0) } ?? r)
            }
            out[item.name] = attribute.type.isList ? .array(related) : (related.first ?? .null)
        }
        return out
    }

    private func targetTable(_ attribute: AttributeDefinition) -> TableLayout? {
        guard case .object(let typeName) = attribute.type.elementType else { return nil }
        return store.table(typeName: typeName)
    }

    private func relatedRecords(_ record: JSONObject, in table: TableLayout, attribute: AttributeDefinition) -> [JSONObject] {
        guard let target = targetTable(attribute), let relationship = attribute.relationship else { return [] }
        do {
            switch relationship {
            case .from(let foreignKey):
                let keys: [JSONValue]
                switch record[foreignKey] {
                case .array(let a): keys = a
                case .some(let v) where !v.isNull: keys = [v]
                default: keys = []
                }
                let pkType = target.definition.primaryKeyAttribute.type
                return try keys.compactMap { key in
                    guard let id = RecordID(json: key, type: pkType) else { return nil }
                    return try Store.fetch(db, target, id)?.record
                }
            case .to(let attributeName):
                guard let ownID = record[table.definition.primaryKey] else { return [] }
                let memoKey = "\(target.index)|\(attributeName)|\(ownID)"
                if let hit = memo[memoKey] { return hit }
                let query = Query(filter: .compare(Comparison(path: [attributeName], op: .eq, value: .typed(ownID))))
                let plan = QueryPlanner(table: target).plan(query)
                let executor = QueryExecutor(store: store, maximumResults: Int.max - 1)
                let records = try executor.run(query, plan: plan, table: target, db: db).rows.map(\.record)
                memo[memoKey] = records
                return records
            }
        } catch {
            if self.error == nil { self.error = error }
            return []
        }
    }
}
