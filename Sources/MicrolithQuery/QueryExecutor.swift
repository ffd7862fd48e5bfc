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
    /// The record cache's copy of this version, when the row came from there (not projected):
    /// reading the row as a Swift value then decodes it once per version
    /// (``CachedRecord/decodedValue(_:decode:)``).
    public private(set) var cached: CachedRecord?

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

    /// The record cache's copy of the row's record, and its decoded value.
    init(_ cached: CachedRecord, json: String) {
        self.id = cached.id
        self.parsed = cached.record
        self.json = json
        self.cached = cached
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
///
/// A query with a filter, a sort on an indexed attribute (or the primary key) and a `limit`
/// is answered by whichever of two ways costs less for the values it asks for: walking the sort
/// attribute's index in order until the limit is reached, or finding the matches through the
/// most selective condition's index and sorting them. Small counts taken through the indexes
/// decide, when the query runs; the walk has a budget, so a wrong guess costs at most about
/// twice the other way. A composite index (`@index(attributes:)`) whose leading attributes the
/// filter fixes by equality and whose next one is the first sort key beats both: the matches are
/// read from it in order. ``QueryResult/plan`` tells which way answered (``OrderStrategy``).
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
    ///
    /// - Parameter records: the caller reads every row's ``QueryRow/record``: a row the record
    ///   cache holds at the version read takes the cache's parsed record instead of parsing its
    ///   text. Without it rows keep their text and parse it only if asked.
    public func execute(_ query: Query, table: TableLayout, records: Bool = false) async throws -> QueryResult {
        try await execute(query, plan: plan(query, table: table), table: table, records: records)
    }

    /// Runs `query` with `plan`, made earlier by ``plan(_:table:)`` for this query and table (a
    /// plan depends on nothing else, so code that runs one query text many times plans it once).
    public func execute(_ query: Query, plan: QueryPlan, table: TableLayout, records: Bool = false) async throws -> QueryResult {
        Self.observe(query, table: table)
        return try await read(query, plan: plan, table: table) { [self] db in
            try run(query, plan: plan, table: table, db: db, records: records)
        }
    }

    /// How many records match `query`'s filter (its sort, limit and select do not change the
    /// count). SQLite counts through the indexes when the filter goes into SQL whole, without
    /// reading a record; otherwise each candidate is read and tested. No cap applies: nothing is
    /// returned but the number.
    public func count(_ query: Query, table: TableLayout) async throws -> Int {
        Self.observe(query, table: table)
        let filterOnly = Query(filter: query.filter)
        let plan = plan(filterOnly, table: table)
        return try await read(filterOnly, plan: plan, table: table) { [self] db in
            try count(filterOnly, plan: plan, table: table, db: db)
        }
    }

    /// `work` on a read snapshot of `table`'s database: on the calling thread when ``runsInline(_:plan:)``
    /// says the query is bounded, else on a reader's queue.
    private func read<T: Sendable>(
        _ query: Query, plan: QueryPlan, table: TableLayout, _ work: @escaping @Sendable (Database) throws -> T
    ) async throws -> T {
        let database = table.definition.database
        if Self.runsInline(query, plan: plan) { return try await store.readInline(database: database, work) }
        return try await store.read(database: database, work)
    }

    private func count(_ query: Query, plan: QueryPlan, table: TableLayout, db: Database) throws -> Int {
        let (whereSQL, arguments) = whereClause(plan, table: table)
        guard !plan.isExact, let filter = query.filter else {
            let sql = "SELECT count(*) FROM \"\(table.sqlName)\"" + whereSQL
            return try Int.fetchOne(Self.statement(db, sql), arguments: StatementArguments(databaseValues: arguments)) ?? 0
        }
        let resolver = RelationshipResolver(store: store, db: db, root: table)
        let cursor = try Row.fetchCursor(
            Self.statement(db, "SELECT data FROM \"\(table.sqlName)\"" + whereSQL), arguments: StatementArguments(databaseValues: arguments))
        var matches = 0
        while let row = try cursor.next() {
            let text: String = row[0]
            guard let record = try JSONParser.parse(text).objectValue else { continue }
            if QueryEvaluator.matches(filter, record: record, resolve: resolver.resolve) { matches += 1 }
        }
        if let error = resolver.error { throw error }
        return matches
    }

    /// Tells the task's read observer (a response being kept) that `query` reads `table`.
    private static func observe(_ query: Query, table: TableLayout) {
        guard let observer = ReadObservation.observer else { return }
        if QueryPredicate.followsRelationships(query, table: table) {
            observer.untracked("a query on \(table.name) follows relationships")
        } else {
            observer.willQuery(table, predicate: QueryPredicate(query.filter))
        }
    }

    /// The plan's `WHERE` clause with the expiration condition (empty when there is neither),
    /// and its arguments.
    private func whereClause(_ plan: QueryPlan, table: TableLayout) -> (sql: String, arguments: [DatabaseValue]) {
        var arguments = plan.arguments
        var conditions: [String] = []
        if let w = plan.whereClause { conditions.append("(\(w))") }
        if let expiration = expirationCondition(table) {
            conditions.append(expiration.sql)
            arguments.append(expiration.argument)
        }
        return (conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND "), arguments)
    }

    /// The most rows a query without a filter may ask for and still run on the caller's thread.
    static let inlineLimit = 1_000

    /// Whether `query` runs on the caller's thread (see ``Store/readInline(database:_:)``): when an
    /// index narrows its candidates, or it has no filter, no sort and a small limit. Scans and
    /// whole-table sorts go to a reader's queue.
    static func runsInline(_ query: Query, plan: QueryPlan) -> Bool {
        if plan.usesIndex || plan.steering != nil { return true }
        if query.filter == nil, query.sort.isEmpty, let limit = query.limit, limit.end <= inlineLimit { return true }
        return false
    }

    /// Runs `query` on a connection the caller holds (inside a write transaction, for example).
    package func run(_ query: Query, plan: QueryPlan, table: TableLayout, db: Database, records: Bool = false) throws -> QueryResult {
        let cache = records ? store.cache : nil
        let resolver = RelationshipResolver(store: store, db: db, root: table)
        var plan = plan
        var rows: [QueryRow]
        if let steering = plan.steering, let limit = query.limit, limit.count > 0,
            let steered = try runSteered(query, steering: steering, limit: limit, orderBy: plan.orderBy, table: table, db: db, cache: cache)
        {
            rows = steered.rows
            plan.order = steered.order
        } else {
            rows = try runPlain(query, plan: plan, table: table, db: db, resolver: resolver, cache: cache)
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

    /// The condition hiding records past `@table(expiration:)`, when the table has one.
    private func expirationCondition(_ table: TableLayout) -> (sql: String, argument: DatabaseValue)? {
        guard let expiration = table.definition.expiration else { return nil }
        // Records past @table(expiration:) are gone for queries, swept or not.
        let cutoff = Store.versionCutoff(expiration: expiration, now: store.configuration.wallClock())
        return ("\"\(table.sqlName)\".version >= ?", cutoff.databaseValue)
    }

    /// A row as the answer holds it: the stored text as it is, parsed only when a projection
    /// will read it; with `cache`, the cache's parsed record when it holds this version.
    private static func row(
        id: RecordID, text: String, version: Int64, parse: Bool, table: TableLayout, cache: RecordCache?
    ) throws -> QueryRow? {
        if let cache, let held = cache.peek(table: table.index, id: id, version: version) {
            return QueryRow(held, json: text)
        }
        guard parse else { return QueryRow(id: id, json: text) }
        guard case .object(let record) = try JSONParser.parse(text) else { return nil }
        return QueryRow(id: id, record: record, json: text)
    }

    /// The plan as it stands: SQLite narrows (and, when the filter is exact, sorts and limits);
    /// the evaluator does the rest.
    private func runPlain(
        _ query: Query, plan: QueryPlan, table: TableLayout, db: Database, resolver: RelationshipResolver, cache: RecordCache?
    ) throws
        -> [QueryRow]
    {
        let filtered = whereClause(plan, table: table)
        var sql = "SELECT id, data, version FROM \"\(table.sqlName)\"" + filtered.sql
        var arguments = filtered.arguments
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
        let cursor = try Row.fetchCursor(Self.statement(db, sql), arguments: StatementArguments(databaseValues: arguments))
        // Records are parsed only when something here reads them: a residual filter, a sort in
        // Swift, or a projection. Otherwise the stored text goes out as it is.
        let needsRecords = (!plan.isExact && query.filter != nil) || !limitInSQL || query.select != nil
        while let row = try cursor.next() {
            guard let id = TableLayout.recordID(row[0]) else { continue }
            let text: String = row[1]
            let held = cache?.peek(table: table.index, id: id, version: row[2])
            guard needsRecords else {
                rows.append(held.map { QueryRow($0, json: text) } ?? QueryRow(id: id, json: text))
                continue
            }
            guard let record = try held?.record ?? JSONParser.parse(text).objectValue else { continue }
            if !plan.isExact, let filter = query.filter {
                guard QueryEvaluator.matches(filter, record: record, resolve: resolver.resolve) else { continue }
            }
            rows.append(held.map { QueryRow($0, json: text) } ?? QueryRow(id: id, record: record, json: text))
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
        return rows
    }

    // MARK: Statements

    /// The query texts kept prepared on each read connection (512 at most: far more shapes
    /// than an application uses, few statements per connection).
    static let keptTexts = KeptStatementTexts(maximum: 512)

    /// A prepared statement for `sql` on `db`: the connection's kept one for an admitted text
    /// (its cursor is always done with before the next query on the connection starts, and no
    /// other statement uses these texts), a fresh one otherwise.
    static func statement(_ db: Database, _ sql: String) throws -> Statement {
        keptTexts.admits(sql) ? try db.cachedStatement(sql: sql) : try db.makeStatement(sql: sql)
    }

    // MARK: Filter + sort + limit

    /// How many index entries a probe counts at most before it stops: counting through an index
    /// costs far less per entry than reading records, so the probes stay a small part of a query.
    static let probeCap = 256

    /// Answers a filter + sort + limit whose filter SQL takes whole (`steering` holds both ways).
    ///
    /// 1. Each top-level term with an index (other than one on the sort attribute) is counted
    ///    through its index, up to ``probeCap``: the smallest count is what finding and sorting
    ///    the matches costs.
    /// 2. Unless that count is already within the limit, the sort attribute's index is walked in
    ///    order, the other terms tested on each record, until the limit's last row is found. The
    ///    walk may read at most as many records as the other way would (the count; when the
    ///    count hit the cap, four times the cap or the `sqlite_stat1` estimate when larger).
    ///    Matches spread evenly make the walk short; matches bunched away from the start of the
    ///    order (attributes that go together) make it give up, so a wrong guess costs at most
    ///    about twice the other way.
    /// 3. Otherwise the matches are found through the index of the term with the smallest count
    ///    and sorted.
    ///
    /// A sparse sort index (`@indexed(sparse: true)`) is walked only when a term compares the sort
    /// attribute with a value: otherwise it lacks the records without one, and SQLite chooses.
    private func runSteered(
        _ query: Query, steering: Steering, limit: Limit, orderBy: String?, table: TableLayout, db: Database, cache: RecordCache?
    ) throws -> (rows: [QueryRow], order: OrderStrategy)? {
        if let composite = steering.composite, let orderBy {
            let rows = try inIndexOrder(
                query, steering: steering, index: composite.name, orderBy: orderBy, limit: limit, table: table, db: db, cache: cache)
            return (rows, .compositeIndex(attributes: composite.attributes))
        }
        // A sparse sort index without a term that leaves out the records it lacks: there is no
        // walk to weigh, and SQLite's own choice finds and sorts the matches.
        guard steering.canWalk else { return nil }
        var best: (index: Int, count: Int)?
        for (i, conjunct) in steering.conjuncts.enumerated() where conjunct.indexed && !conjunct.onSortAttribute {
            let probe = try db.cachedStatement(
                sql: "SELECT count(*) FROM (SELECT 1 FROM \"\(table.sqlName)\" WHERE \(conjunct.plain) LIMIT \(Self.probeCap))")
            let count = try Int.fetchOne(probe, arguments: StatementArguments(databaseValues: conjunct.arguments)) ?? 0
            if best == nil || count < best!.count { best = (i, count) }
            if count == 0 { break }
        }
        // The planner steers only when such a term exists.
        guard let best else { return nil }
        let chosen = steering.conjuncts[best.index]
        if best.count > limit.end {
            // Past the count, the statistics are read only when a walk gets that far.
            let capped = best.count >= Self.probeCap
            let budget = capped ? 4 * Self.probeCap : best.count
            let extend = { [self] in capped ? estimatedMatches(chosen, table: table, db: db) ?? 0 : 0 }
            if let rows = try walk(
                query, steering: steering, limit: limit, orderBy: orderBy, budget: budget, extend: extend, table: table, db: db, cache: cache)
            {
                return (rows, .sortIndexWalk(attribute: steering.sortAttribute))
            }
            let rows = try filterThenSort(query, steering: steering, chosen: best.index, limit: limit, table: table, db: db, cache: cache)
            return (rows, .filterThenSort(condition: chosen.label, abandonedWalk: true))
        }
        let rows = try filterThenSort(query, steering: steering, chosen: best.index, limit: limit, table: table, db: db, cache: cache)
        return (rows, .filterThenSort(condition: chosen.label, abandonedWalk: false))
    }

    /// How many records `conjunct` matches by the statistics `ANALYZE` keeps (`sqlite_stat1`):
    /// the average records per value of its index for an equality, a quarter of the table for
    /// anything else; `nil` without statistics.
    private func estimatedMatches(_ conjunct: Steering.Conjunct, table: TableLayout, db: Database) -> Int? {
        func stat(_ index: String) -> [Int]? {
            let text = try? String.fetchOne(
                db.cachedStatement(sql: "SELECT stat FROM sqlite_stat1 WHERE tbl = ? AND idx = ?"), arguments: [table.sqlName, index])
            return text?.split(separator: " ").compactMap { Int($0) }
        }
        if let index = conjunct.equalityIndex, let numbers = stat(index), numbers.count >= 2 { return numbers[1] }
        if let numbers = stat(table.sqlName), let rows = numbers.first { return rows / 4 }
        return nil
    }

    /// Walks the sort attribute's index in order, testing the other terms on each record; `nil`
    /// when more records than `budget` were read before the limit's last row was found (the
    /// budget grows once, to what `extend` answers, when that is more).
    private func walk(
        _ query: Query, steering: Steering, limit: Limit, orderBy: String?, budget: Int, extend: () -> Int, table: TableLayout,
        db: Database, cache: RecordCache?
    ) throws -> [QueryRow]? {
        var budget = budget
        var extended = false
        var tests: [String] = []
        var testArguments: [DatabaseValue] = []
        var bounds: [String] = []
        var boundArguments: [DatabaseValue] = []
        for conjunct in steering.conjuncts {
            if conjunct.onSortAttribute {
                bounds.append("(\(conjunct.plain))")
                boundArguments += conjunct.arguments
            } else {
                tests.append("(\(conjunct.steered))")
                testArguments += conjunct.arguments
            }
        }
        if let expiration = expirationCondition(table) {
            bounds.append(expiration.sql)
            boundArguments.append(expiration.argument)
        }
        let test = tests.isEmpty ? "1" : "CASE WHEN \(tests.joined(separator: " AND ")) THEN 1 ELSE 0 END"
        var sql = "SELECT id, data, \(test), version FROM \"\(table.sqlName)\""
        if let index = steering.sortIndex { sql += " INDEXED BY \"\(index)\"" }
        if !bounds.isEmpty { sql += " WHERE " + bounds.joined(separator: " AND ") }
        if let orderBy { sql += " ORDER BY \(orderBy)" }
        let cursor = try Row.fetchCursor(Self.statement(db, sql), arguments: StatementArguments(databaseValues: testArguments + boundArguments))
        var rows: [QueryRow] = []
        var read = 0
        var matched = 0
        while matched < limit.end, let row = try cursor.next() {
            read += 1
            if read > budget {
                guard !extended else { return nil }
                extended = true
                budget = max(budget, extend())
                if read > budget { return nil }
            }
            guard (row[2] as Int64) == 1 else { continue }
            matched += 1
            guard matched > limit.start, let id = TableLayout.recordID(row[0]) else { continue }
            if let found = try Self.row(id: id, text: row[1], version: row[3], parse: query.select != nil, table: table, cache: cache) {
                rows.append(found)
            }
        }
        return rows
    }

    /// Reads the matches in order from a composite index whose leading columns the equality terms
    /// fix and whose next column is the first sort key: SQLite seeks to the first match and reads
    /// on, skipping `limit.start` entries of the index (never records) before the rows it returns.
    private func inIndexOrder(
        _ query: Query, steering: Steering, index: String, orderBy: String, limit: Limit, table: TableLayout, db: Database,
        cache: RecordCache?
    ) throws -> [QueryRow] {
        try limitedRows(
            query, conditions: steering.conjuncts.map { "(\($0.plain))" }, arguments: steering.conjuncts.flatMap(\.arguments),
            indexedBy: index, orderBy: orderBy, limit: limit, table: table, db: db, cache: cache)
    }

    /// Finds the matches through the index of term `chosen` (every other term and the order
    /// kept away from their indexes), sorts them and applies the limit.
    private func filterThenSort(
        _ query: Query, steering: Steering, chosen: Int, limit: Limit, table: TableLayout, db: Database, cache: RecordCache?
    ) throws -> [QueryRow] {
        try limitedRows(
            query, conditions: steering.conjuncts.enumerated().map { i, c in "(\(i == chosen ? c.plain : c.steered))" },
            arguments: steering.conjuncts.flatMap(\.arguments), indexedBy: nil, orderBy: steering.steeredOrderBy, limit: limit,
            table: table, db: db, cache: cache)
    }

    /// The rows of `SELECT id, data, version … WHERE conditions ORDER BY orderBy LIMIT … OFFSET …`
    /// (with the expiration condition, and `INDEXED BY indexedBy` when given).
    private func limitedRows(
        _ query: Query, conditions: [String], arguments: [DatabaseValue], indexedBy: String?, orderBy: String, limit: Limit,
        table: TableLayout, db: Database, cache: RecordCache?
    ) throws -> [QueryRow] {
        var conditions = conditions
        var arguments = arguments
        if let expiration = expirationCondition(table) {
            conditions.append(expiration.sql)
            arguments.append(expiration.argument)
        }
        let hint = indexedBy.map { " INDEXED BY \"\($0)\"" } ?? ""
        let sql = """
            SELECT id, data, version FROM "\(table.sqlName)"\(hint) WHERE \(conditions.joined(separator: " AND ")) \
            ORDER BY \(orderBy) LIMIT ? OFFSET ?
            """
        arguments += [Int64(limit.count).databaseValue, Int64(limit.start).databaseValue]
        var rows: [QueryRow] = []
        let cursor = try Row.fetchCursor(Self.statement(db, sql), arguments: StatementArguments(databaseValues: arguments))
        while let row = try cursor.next() {
            guard let id = TableLayout.recordID(row[0]) else { continue }
            if let found = try Self.row(id: id, text: row[1], version: row[2], parse: query.select != nil, table: table, cache: cache) {
                rows.append(found)
            }
        }
        return rows
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
