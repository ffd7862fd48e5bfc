package import GRDB
import MicrolithJSON
import MicrolithSchema
package import MicrolithStore

/// How a query is answered: the SQL that narrows the candidates through indexes, and what is
/// left for the evaluator.
public struct QueryPlan: Sendable, CustomStringConvertible {
    /// The `WHERE` clause sent to SQLite (`nil`: every record is a candidate).
    package var whereClause: String?
    package var arguments: [DatabaseValue]
    /// The SQL clause selects exactly the matching records; no residual filtering is needed.
    public var isExact: Bool
    /// At least one index (or the primary key) narrows the candidates.
    public var usesIndex: Bool
    /// The filter has conditions but no index serves them: every record is read.
    public var isFullScan: Bool
    /// `ORDER BY … LIMIT …` is done by SQLite.
    public var sortsInSQL: Bool
    package var orderBy: String?
    /// How the rows of a filtered, sorted and limited query came out in order. The planner
    /// prepares the choice; it is made when the query runs, from what the indexes hold then.
    public var order: OrderStrategy = .sqlite
    /// The two ways to answer a filter + sort + limit, when there is a choice.
    package var steering: Steering?

    /// A short description for logs and the `Server-Timing` header: `index` (an index narrows the
    /// candidates), `table-scan` or `full-scan`; `residual-filter` when the evaluator checks what
    /// SQL could not; then how the order was obtained: `sql-sort` (SQLite's own choice),
    /// `walk(a)` (the index of the sort attribute `a` was walked in order) or `index(c),sql-sort`
    /// (the matches of condition `c` were found through its index, then sorted), followed by
    /// `walk-abandoned` when a walk was tried first and gave up; or `index(a+b),in-order` (a
    /// composite index over `a`, `b` gave the matches already in order).
    public var description: String {
        var parts: [String] = []
        switch order {
        case .sqlite:
            parts.append(usesIndex ? "index" : (isFullScan ? "full-scan" : "table-scan"))
            if !isExact && whereClause != nil { parts.append("residual-filter") }
            if sortsInSQL { parts.append("sql-sort") }
        case .sortIndexWalk(let attribute):
            parts += ["index", "walk(\(attribute))"]
        case .filterThenSort(let condition, let abandonedWalk):
            parts += ["index(\(condition))", "sql-sort"]
            if abandonedWalk { parts.append("walk-abandoned") }
        case .compositeIndex(let attributes):
            parts += ["index(\(attributes.joined(separator: "+")))", "in-order"]
        }
        return parts.joined(separator: ",")
    }
}

/// How a query with a filter, a sort and a limit gets its first rows in order.
///
/// Two ways compete: walking the index of the first sort attribute in order, testing the other
/// conditions on each record and stopping once the limit is reached (cheap when many records
/// match), or finding the matches through the most selective condition's index and sorting them
/// (cheap when few match). See ``QueryExecutor`` for how the choice is made.
public enum OrderStrategy: Sendable, Equatable {
    /// SQLite's own choice: the query has no filter + sort + limit to weigh, or nothing to choose
    /// between.
    case sqlite
    /// The index of `attribute` (the first sort key) was walked in order.
    case sortIndexWalk(attribute: String)
    /// The records matching `condition` (an attribute name, or `or` for an alternative) were
    /// found through its index, then sorted; `abandonedWalk` when a walk of the sort index was
    /// tried first and gave up after its budget.
    case filterThenSort(condition: String, abandonedWalk: Bool)
    /// A composite index (`@index(attributes:)`) whose leading attributes the filter tests for
    /// equality and whose next attribute is the first sort key: its entries are the matches, in
    /// order, so the rows are read straight from it.
    case compositeIndex(attributes: [String])
}

/// What the executor needs to answer a filter + sort + limit either way.
package struct Steering: Sendable {
    /// One top-level `&` term of the filter.
    package struct Conjunct: Sendable {
        /// The attribute the term tests, `or` for an alternative, `group` for a `[ ]` group.
        var label: String
        /// The SQL letting SQLite use the term's index.
        var plain: String
        /// The same test with every column behind a unary `+`, so no index serves it.
        var steered: String
        var arguments: [DatabaseValue]
        /// The term tests the first sort attribute (it bounds the walk).
        var onSortAttribute: Bool
        /// An index serves the term.
        var indexed: Bool
        /// The index whose `sqlite_stat1` row tells how many records share one value, for an
        /// equality on a scalar indexed attribute.
        var equalityIndex: String?
    }

    /// The first sort attribute.
    var sortAttribute: String
    /// The index walked for the order (`nil`: the primary key, the table itself).
    var sortIndex: String?
    /// The sort index holds every match, so walking it is one of the ways (false for a sparse
    /// index the filter does not restrict to records with a value).
    var canWalk: Bool
    var conjuncts: [Conjunct]
    /// `ORDER BY` with every column behind a unary `+`, so no index supplies the order.
    var steeredOrderBy: String
    /// A composite index that answers the query in order: its leading attributes have equality
    /// terms, its next one is the sort attribute. The one with the most equal leading attributes.
    var composite: (name: String, attributes: [String])?
}

/// Turns a bound ``Query`` into a ``QueryPlan`` for one table.
package struct QueryPlanner {
    let table: TableLayout

    package init(table: TableLayout) { self.table = table }

    struct Fragment {
        var sql: String
        var arguments: [DatabaseValue]
        var exact: Bool
        var indexed: Bool
    }

    package func plan(_ query: Query) -> QueryPlan {
        var fragment: Fragment?
        if let filter = query.filter { fragment = pushDown(filter) }
        let exact = query.filter == nil || (fragment?.exact ?? false)
        var orderBy: String?
        var sortsInSQL = false
        if exact, let order = sqlOrder(query.sort) {
            orderBy = order
            sortsInSQL = true
        }
        let usesIndex = fragment?.indexed ?? false
        var plan = QueryPlan(
            whereClause: fragment?.sql, arguments: fragment?.arguments ?? [], isExact: exact, usesIndex: usesIndex,
            isFullScan: query.filter != nil && !usesIndex, sortsInSQL: sortsInSQL, orderBy: orderBy)
        if sortsInSQL, query.limit != nil, let filter = query.filter {
            plan.steering = steering(filter, sort: query.sort)
        }
        return plan
    }

    /// The alternatives for a filter + sort + limit: present when the first sort key has an
    /// index (or is the primary key) and some other top-level term has one too.
    private func steering(_ filter: Condition, sort: [SortKey]) -> Steering? {
        guard let first = sort.first, first.path.count == 1 else { return nil }
        let name = first.path[0]
        let sortIndex: String?
        if name == table.definition.primaryKey {
            sortIndex = nil
        } else if table.column(for: name) != nil {
            sortIndex = TableLayout.indexName(table: table.name, attribute: name)
        } else {
            return nil
        }
        let terms: [Condition]
        if case .and(let parts) = filter { terms = parts } else { terms = [filter] }
        var conjuncts: [Steering.Conjunct] = []
        var equalities: Set<String> = []
        // A sparse index holds only the records with a value: walking it yields every match
        // only when the filter itself compares the sort attribute with a value.
        var walkable = !table.hasSparseIndex(name)
        for term in terms {
            guard let plain = pushDown(term), let steered = pushDown(term, steered: true), plain.exact else { return nil }
            var label = "group"
            if case .or = term { label = "or" }
            var onSort = false
            var equalityIndex: String?
            if case .compare(let c) = term {
                label = c.path.joined(separator: ".")
                onSort = c.path == [name]
                if onSort, Self.impliesValue(c) { walkable = true }
                if c.op == .eq, c.path.count == 1, table.column(for: c.path[0]) != nil {
                    equalityIndex = TableLayout.indexName(table: table.name, attribute: c.path[0])
                    equalities.insert(c.path[0])
                }
            }
            conjuncts.append(
                Steering.Conjunct(
                    label: label, plain: plain.sql, steered: steered.sql, arguments: plain.arguments, onSortAttribute: onSort,
                    indexed: plain.indexed, equalityIndex: equalityIndex))
        }
        guard conjuncts.contains(where: { !$0.onSortAttribute && $0.indexed }) else { return nil }
        var composite: (name: String, attributes: [String])?
        for (attributes, index) in table.compositeIndexes {
            // At least one equal leading attribute, and more of them than the index chosen so far.
            guard let position = attributes.firstIndex(of: name), position >= (composite?.attributes.count ?? 1),
                attributes[..<position].allSatisfy({ equalities.contains($0) })
            else { continue }
            composite = (index, Array(attributes[...position]))
        }
        var orderTerms: [String] = []
        for key in sort {
            let column = key.path[0] == table.definition.primaryKey ? "id" : "\"\(table.column(for: key.path[0]) ?? "")\""
            orderTerms.append("+" + column + (key.descending ? " DESC" : " ASC"))
        }
        if !sort.contains(where: { $0.path == [table.definition.primaryKey] }) { orderTerms.append("+id ASC") }
        return Steering(
            sortAttribute: name, sortIndex: sortIndex, canWalk: walkable, conjuncts: conjuncts,
            steeredOrderBy: orderTerms.joined(separator: ", "), composite: composite)
    }

    /// Whether a record matching `c` has a value (not null) for the attribute it tests: a
    /// comparison with a value other than `ne` (SQLite then also lets a partial index
    /// `WHERE column IS NOT NULL` serve the query).
    private static func impliesValue(_ c: Comparison) -> Bool {
        guard case .typed(let value) = c.value, !value.isNull else { return false }
        switch c.op {
        case .eq, .gt, .ge, .lt, .le, .sw: return true
        case .ne, .ct: return false
        }
    }

    private func sqlOrder(_ keys: [SortKey]) -> String? {
        var terms: [String] = []
        for key in keys {
            guard key.path.count == 1 else { return nil }
            let name = key.path[0]
            let column: String
            if name == table.definition.primaryKey {
                column = "id"
            } else if let c = table.column(for: name), table.definition.attribute(name)?.type.isOrderedScalar == true {
                column = "\"\(c)\""
            } else {
                return nil
            }
            terms.append(column + (key.descending ? " DESC" : " ASC"))
        }
        if !keys.contains(where: { $0.path == [table.definition.primaryKey] }) { terms.append("id ASC") }
        return terms.joined(separator: ", ")
    }

    /// The SQL for `condition`; with `steered`, every column stands behind a unary `+` so that
    /// SQLite can use no index for it (the test itself is the same: the columns have no affinity).
    private func pushDown(_ condition: Condition, steered: Bool = false) -> Fragment? {
        switch condition {
        case .compare(let c): return pushDown(c, steered: steered)
        case .and(let parts):
            let pushed = parts.map { pushDown($0, steered: steered) }
            let present = pushed.compactMap { $0 }
            guard !present.isEmpty else { return nil }
            return Fragment(
                sql: present.map { "(\($0.sql))" }.joined(separator: " AND "), arguments: present.flatMap(\.arguments),
                exact: present.count == parts.count && present.allSatisfy(\.exact), indexed: present.contains { $0.indexed })
        case .or(let parts):
            var present: [Fragment] = []
            for p in parts {
                guard let f = pushDown(p, steered: steered) else { return nil }
                present.append(f)
            }
            guard !present.isEmpty else { return nil }
            return Fragment(
                sql: present.map { "(\($0.sql))" }.joined(separator: " OR "), arguments: present.flatMap(\.arguments),
                exact: present.allSatisfy(\.exact), indexed: present.allSatisfy(\.indexed))
        }
    }

    /// The kind of JSON value a declared type holds, for deciding when SQL comparison agrees
    /// with the evaluator's.
    private enum Kind { case string, number, boolean }

    private static func kinds(of type: AttributeType) -> Set<Kind> {
        switch type.elementType {
        case .string, .date: return [.string]
        case .int, .long, .float: return [.number]
        case .boolean: return [.boolean]
        case .id: return [.string, .number]
        default: return []
        }
    }

    private static func kind(of value: JSONValue) -> Kind? {
        switch value {
        case .string: return .string
        case .int, .double: return .number
        case .bool: return .boolean
        default: return nil
        }
    }

    /// The least text above every text that starts with `prefix` (under SQLite's binary
    /// collation, which orders UTF-8 bytes as Unicode scalars): `prefix` with its last scalar
    /// raised by one; `nil` when no scalar can be raised (then the range has no upper end).
    package static func successor(_ prefix: String) -> String? {
        var scalars = Array(prefix.unicodeScalars)
        while let last = scalars.popLast() {
            var value = last.value + 1
            if value == 0xD800 { value = 0xE000 }
            if let next = Unicode.Scalar(value) {
                scalars.append(next)
                var text = String.UnicodeScalarView()
                text.append(contentsOf: scalars)
                return String(text)
            }
        }
        return nil
    }

    private static func typeGuard(_ column: String, _ kind: Kind) -> String {
        switch kind {
        case .string: return "typeof(\(column)) = 'text'"
        case .number, .boolean: return "typeof(\(column)) IN ('integer','real')"
        }
    }

    private func pushDown(_ c: Comparison, steered: Bool) -> Fragment? {
        guard c.path.count == 1, case .typed(let value) = c.value else { return nil }
        let name = c.path[0]
        guard let attribute = table.definition.attribute(name), attribute.relationship == nil else { return nil }
        let allowed = Self.kinds(of: attribute.type)
        var column: String
        let isList: Bool
        if name == table.definition.primaryKey {
            column = "id"
            isList = false
        } else if let col = table.column(for: name) {
            column = "\"\(col)\""
            isList = false
        } else if table.sideTable(for: name) != nil {
            column = "value"
            isList = true
        } else {
            return nil
        }
        if steered && !isList { column = "+" + column }
        let outerID = steered ? "+id" : "id"
        let sqlValue = TableLayout.indexValue(value)
        var predicate: String
        var arguments: [DatabaseValue] = []
        var indexed = true
        if value.isNull {
            guard !isList else { return nil }
            switch c.op {
            case .eq: predicate = "\(column) IS NULL"
            case .ne: predicate = "\(column) IS NOT NULL"
            default: predicate = "0"
            }
            return Fragment(sql: predicate, arguments: [], exact: true, indexed: c.op == .eq && table.indexHoldsNulls(of: name))
        }
        guard let kind = Self.kind(of: value), allowed.contains(kind) else { return nil }
        switch c.op {
        case .eq, .ne:
            predicate = "\(column) = ?"
            arguments = [sqlValue]
        case .gt, .ge, .lt, .le:
            let op = [ComparisonOperator.gt: ">", .ge: ">=", .lt: "<", .le: "<="][c.op]!
            predicate = "\(column) \(op) ? AND \(Self.typeGuard(column, kind))"
            arguments = [sqlValue]
        case .sw:
            guard case .string(let prefix) = value else { return nil }
            // An index range on both sides: [prefix, prefix's successor), so a prefix that few keys
            // have costs a seek, not a walk to the end of the index.
            let below = Self.successor(prefix) == nil ? "" : "\(column) < ? AND "
            predicate = "\(column) >= ? AND \(below)substr(\(column), 1, ?) = ? AND typeof(\(column)) = 'text'"
            arguments = [sqlValue]
            if let next = Self.successor(prefix) { arguments.append(next.databaseValue) }
            arguments += [Int64(prefix.unicodeScalars.count).databaseValue, sqlValue]
        case .ct:
            guard case .string = value else { return nil }
            predicate = "instr(\(column), ?) > 0 AND typeof(\(column)) = 'text'"
            arguments = [sqlValue]
            indexed = false
        }
        if isList, let side = table.sideTable(for: name) {
            let inner = "SELECT id FROM \"\(side)\" WHERE \(predicate)"
            let sql = c.op == .ne ? "\(outerID) NOT IN (\(inner))" : "\(outerID) IN (\(inner))"
            return Fragment(sql: sql, arguments: arguments, exact: true, indexed: indexed && c.op != .ne)
        }
        if c.op == .ne {
            return Fragment(sql: "\(column) IS NOT ?", arguments: arguments, exact: true, indexed: false)
        }
        return Fragment(sql: predicate, arguments: arguments, exact: true, indexed: indexed)
    }
}
