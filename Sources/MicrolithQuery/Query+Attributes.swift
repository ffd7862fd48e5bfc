extension Query {
    /// The attributes of the queried table its conditions and sort keys name (the first step of
    /// each path): what a role must be allowed to see for the query to run.
    public var namedAttributes: Set<String> {
        var names = Set(sort.compactMap(\.path.first))
        func collect(_ condition: Condition?) {
            switch condition {
            case nil: return
            case .and(let terms)?, .or(let terms)?: terms.forEach(collect)
            case .compare(let c)?: if let first = c.path.first { names.insert(first) }
            }
        }
        collect(filter)
        return names
    }
}
