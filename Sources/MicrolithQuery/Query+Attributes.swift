import MicrolithJSON
package import MicrolithStore

extension Query {
    /// The attribute paths its conditions and sort keys name (`price`, `category.name`): what a
    /// role must be allowed to see, on this table and on each related one, for the query to run.
    public var namedPaths: [[String]] {
        var paths = sort.map(\.path)
        func collect(_ condition: Condition?) {
            switch condition {
            case nil: return
            case .and(let terms)?, .or(let terms)?: terms.forEach(collect)
            case .compare(let c)?: paths.append(c.path)
            }
        }
        collect(filter)
        return paths
    }

    /// The attributes its filter tests for null (`a=null`) whose index is sparse
    /// (`@indexed(sparse: true)`), so holds no entry for such records: why a query that names
    /// only indexed attributes may still read every record.
    package func nullTestsOnSparseIndexes(_ table: TableLayout) -> [String] {
        var names: [String] = []
        func collect(_ condition: Condition?) {
            switch condition {
            case nil: return
            case .and(let terms)?, .or(let terms)?: terms.forEach(collect)
            case .compare(let c)?:
                guard c.op == .eq, c.path.count == 1, case .typed(let value) = c.value, value.isNull,
                    !table.indexHoldsNulls(of: c.path[0]), !names.contains(c.path[0])
                else { return }
                names.append(c.path[0])
            }
        }
        collect(filter)
        return names
    }

    /// The paths of every item `select(...)` names, nested ones included (`category`,
    /// `category.name`): those through relationships join related records into the answer.
    public var selectedPaths: [[String]] {
        var paths: [[String]] = []
        func collect(_ items: [SelectItem]?, _ prefix: [String]) {
            for item in items ?? [] {
                paths.append(prefix + [item.name])
                collect(item.children, prefix + [item.name])
            }
        }
        collect(select, [])
        return paths
    }
}
