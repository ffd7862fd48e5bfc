public import MicrolithJSON
import MicrolithSchema
public import MicrolithStore

/// A query's filter as a ``RecordPredicate``: what a cache keeping the query's answer tests a
/// changed record against.
public struct QueryPredicate: RecordPredicate {
    /// The bound filter; `nil` matches every record.
    public let filter: Condition?
    public let equality: (attribute: String, value: JSONValue)?

    public init(_ filter: Condition?) {
        self.filter = filter
        self.equality = filter.flatMap(Self.equality(in:))
    }

    public func mayMatch(_ record: JSONObject) -> Bool {
        guard let filter else { return true }
        return QueryEvaluator.matches(filter, record: record, resolve: QueryEvaluator.defaultResolve)
    }

    /// A top-level `attribute = scalar` every match must satisfy.
    static func equality(in condition: Condition) -> (attribute: String, value: JSONValue)? {
        switch condition {
        case .compare(let c):
            guard c.op == .eq, c.path.count == 1 else { return nil }
            let value: JSONValue
            switch c.value {
            case .typed(let v): value = v
            case .untyped(let text): value = .string(text)
            }
            switch value {
            case .array, .object: return nil
            default: return (c.path[0], value)
            }
        case .and(let terms):
            for term in terms {
                if let found = equality(in: term) { return found }
            }
            return nil
        case .or:
            return nil
        }
    }

    /// Whether `query` on `table` reads through a relationship (in its filter, sort or
    /// selection): its answer then depends on records of other tables.
    public static func followsRelationships(_ query: Query, table: TableLayout) -> Bool {
        func hops(_ path: [String]) -> Bool {
            path.count > 1 && table.definition.attribute(path[0])?.relationship != nil
        }
        func inCondition(_ c: Condition) -> Bool {
            switch c {
            case .compare(let comparison): return hops(comparison.path)
            case .and(let terms), .or(let terms): return terms.contains(where: inCondition)
            }
        }
        if let filter = query.filter, inCondition(filter) { return true }
        if query.sort.contains(where: { hops($0.path) }) { return true }
        if let select = query.select, select.contains(where: { $0.children != nil }) { return true }
        return false
    }
}
