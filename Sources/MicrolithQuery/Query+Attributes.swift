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
