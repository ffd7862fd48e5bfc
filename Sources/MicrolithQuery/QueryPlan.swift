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

    public var description: String {
        var parts: [String] = []
        parts.append(usesIndex ? "index" : (isFullScan ? "full-scan" : "table-scan"))
        if !isExact && whereClause != nil { parts.append("residual-filter") }
        if sortsInSQL { parts.append("sql-sort") }
        return parts.joined(separator: ",")
    }
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
        return QueryPlan(
            whereClause: fragment?.sql, arguments: fragment?.arguments ?? [], isExact: exact, usesIndex: usesIndex,
            isFullScan: query.filter != nil && !usesIndex, sortsInSQL: sortsInSQL, orderBy: orderBy)
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

    private func pushDown(_ condition: Condition) -> Fragment? {
        switch condition {
        case .compare(let c): return pushDown(c)
        case .and(let parts):
            let pushed = parts.map(pushDown)
            let present = pushed.compactMap { $0 }
            guard !present.isEmpty else { return nil }
            return Fragment(
                sql: present.map { "(\($0.sql))" }.joined(separator: " AND "), arguments: present.flatMap(\.arguments),
                exact: present.count == parts.count && present.allSatisfy(\.exact), indexed: present.contains { $0.indexed })
        case .or(let parts):
            var present: [Fragment] = []
            for p in parts {
                guard let f = pushDown(p) else { return nil }
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

    private static func typeGuard(_ column: String, _ kind: Kind) -> String {
        switch kind {
        case .string: return "typeof(\(column)) = 'text'"
        case .number, .boolean: return "typeof(\(column)) IN ('integer','real')"
        }
    }

    private func pushDown(_ c: Comparison) -> Fragment? {
        guard c.path.count == 1, case .typed(let value) = c.value else { return nil }
        let name = c.path[0]
        guard let attribute = table.definition.attribute(name), attribute.relationship == nil else { return nil }
        let allowed = Self.kinds(of: attribute.type)
        let column: String
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
            return Fragment(sql: predicate, arguments: [], exact: true, indexed: c.op == .eq)
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
            predicate = "\(column) >= ? AND substr(\(column), 1, ?) = ? AND typeof(\(column)) = 'text'"
            arguments = [sqlValue, Int64(prefix.unicodeScalars.count).databaseValue, sqlValue]
        case .ct:
            guard case .string = value else { return nil }
            predicate = "instr(\(column), ?) > 0 AND typeof(\(column)) = 'text'"
            arguments = [sqlValue]
            indexed = false
        }
        if isList, let side = table.sideTable(for: name) {
            let inner = "SELECT id FROM \"\(side)\" WHERE \(predicate)"
            let sql = c.op == .ne ? "id NOT IN (\(inner))" : "id IN (\(inner))"
            return Fragment(sql: sql, arguments: arguments, exact: true, indexed: indexed && c.op != .ne)
        }
        if c.op == .ne {
            return Fragment(sql: "\(column) IS NOT ?", arguments: arguments, exact: true, indexed: false)
        }
        return Fragment(sql: predicate, arguments: arguments, exact: true, indexed: indexed)
    }
}
