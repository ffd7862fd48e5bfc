import MicrolithJSON
public import MicrolithSchema

extension Query {
    /// This query with every value converted to the declared type of the attribute it is compared with,
    /// after checking its attribute paths, `select` and `sort` against `table`.
    ///
    /// Conversions of ``QueryValue/untyped(_:)`` text, by the declared type of the attribute at the
    /// comparison's path (for a list type `[T]`, by `T`; dotted paths follow relationships to the related
    /// table and nested object types through ``Schema/nestedTypes``):
    /// - `ID`, `String`, `Any`, nested object types, and attributes not declared anywhere: the text as a string;
    /// - `Int`: a 32-bit integer, `Long`: a 64-bit integer (text `-?digits`; anything else is an error);
    /// - `Float`: a number (an integer when the text is integral, else a double; an error when not a number);
    /// - `Boolean`: `true` or `false` (anything else is an error);
    /// - `Date`: an ISO 8601 timestamp or integer milliseconds, normalised to `YYYY-MM-DDTHH:MM:SS.mmmZ`
    ///   (an error when invalid).
    ///
    /// `sw` and `ct` values always stay strings, and ``QueryValue/typed(_:)`` values are kept as written.
    /// In the result every value is `.typed`.
    ///
    /// Throws ``QueryError`` (with the comparison's offset) for: an attribute not declared in a sealed
    /// table or nested type; a dotted path through an attribute that is neither a relationship, a nested
    /// object nor `Any`; a comparison on a relationship attribute itself; a value that does not convert.
    /// Throws (without an offset) for: `select` of an attribute not declared in a sealed table;
    /// `select` children (`attr{...}`) on an attribute that is not a relationship; `sort` by a
    /// relationship attribute itself or by an unknown attribute of a sealed table.
    public func bound(to table: TableDefinition, schema: Schema) throws(QueryError) -> Query {
        let resolver = SchemaPathResolver(schema: schema)
        var result = self
        if let filter { result.filter = try resolver.bind(filter, in: table) }
        if let select { try resolver.checkSelect(select, in: table) }
        for key in sort {
            let resolved = try resolver.resolve(key.path, in: table, offset: nil)
            if case .attribute(let attribute) = resolved, attribute.relationship != nil {
                throw QueryError(message: "cannot sort by relationship '\(key.path.joined(separator: "."))'; sort by one of its attributes")
            }
        }
        return result
    }
}

extension Query {
    /// The attributes this query's conditions and `sort` name that `table` (an open one, or an
    /// open nested type or related table on the way) does not declare, each described as
    /// `'name' (table 'T' declares a, b, c)`, in query order, without repeats.
    ///
    /// Such a query is valid (records are open, so they may carry the attribute) but a typo in
    /// it filters out every record or leaves the order as it was; the REST layer reports these
    /// in a `Warning` header. Paths below an `Any` attribute are not reported.
    public func undeclaredAttributes(in table: TableDefinition, schema: Schema) -> [String] {
        let resolver = SchemaPathResolver(schema: schema)
        var paths: [[String]] = []
        func collect(_ condition: Condition) {
            switch condition {
            case .and(let terms), .or(let terms): terms.forEach(collect)
            case .compare(let comparison): paths.append(comparison.path)
            }
        }
        if let filter { collect(filter) }
        paths += sort.map(\.path)
        var found: [String] = []
        for path in paths {
            guard case .undeclared(let unknown)? = try? resolver.resolve(path, in: table, offset: nil), let unknown else { continue }
            if !found.contains(unknown) { found.append(unknown) }
        }
        return found
    }
}

extension SchemaPathResolver {
    func bind(_ condition: Condition, in table: TableDefinition) throws(QueryError) -> Condition {
        switch condition {
        case .and(let terms):
            var bound: [Condition] = []
            for term in terms { bound.append(try bind(term, in: table)) }
            return .and(bound)
        case .or(let terms):
            var bound: [Condition] = []
            for term in terms { bound.append(try bind(term, in: table)) }
            return .or(bound)
        case .compare(var comparison):
            comparison.value = try bind(comparison, in: table)
            return .compare(comparison)
        }
    }

    func bind(_ comparison: Comparison, in table: TableDefinition) throws(QueryError) -> QueryValue {
        let resolved = try resolve(comparison.path, in: table, offset: comparison.offset)
        let name = comparison.path.joined(separator: ".")
        if case .attribute(let attribute) = resolved, attribute.relationship != nil {
            throw QueryError(
                message: "cannot compare relationship '\(name)' itself; compare one of its attributes, such as '\(name).id'",
                offset: comparison.offset
            )
        }
        guard case .untyped(let text) = comparison.value else { return comparison.value }
        if comparison.op == .sw || comparison.op == .ct { return .typed(.string(text)) }
        guard case .attribute(let attribute) = resolved else { return .typed(.string(text)) }
        return .typed(try Self.convert(text, to: attribute.type, attribute: name, offset: comparison.offset))
    }

    /// Converts `text` to `declared` (for a list, to its element type).
    static func convert(_ text: String, to declared: AttributeType, attribute: String, offset: Int?) throws(QueryError) -> JSONValue {
        func failure(_ expected: String) -> QueryError {
            QueryError(message: "'\(text)' is not \(expected) for \(declared) attribute '\(attribute)'", offset: offset)
        }
        let type = declared.elementType
        switch type {
        case .id, .string, .any, .object:
            return .string(text)
        case .int:
            guard let value = NumberText.integer(text), value >= Int64(Int32.min), value <= Int64(Int32.max) else {
                throw failure("a 32-bit integer")
            }
            return .int(value)
        case .long:
            guard let value = NumberText.integer(text) else { throw failure("a 64-bit integer") }
            return .int(value)
        case .float:
            guard let value = NumberText.number(text) else { throw failure("a number") }
            return value
        case .boolean:
            switch text {
            case "true": return .bool(true)
            case "false": return .bool(false)
            default: throw failure("a boolean (true or false)")
            }
        case .date:
            guard let value = DateValue.normalize(queryText: text) else { throw failure("an ISO 8601 date or a number of milliseconds") }
            return .string(value)
        case .list:
            // `elementType` is never a list.
            return .string(text)
        }
    }

    /// Checks `select` items against `table`: attributes of a sealed table must be declared, and only
    /// relationships take children, which are checked against the related table.
    func checkSelect(_ items: [SelectItem], in table: TableDefinition) throws(QueryError) {
        for item in items {
            guard let attribute = table.attribute(item.name) else {
                if table.isSealed {
                    throw QueryError(
                        message: "cannot select unknown attribute '\(item.name)' of sealed table '\(table.name)'; \(Container(table).declared)")
                }
                if item.children != nil {
                    throw QueryError(message: "'\(item.name)' is not a relationship of table '\(table.name)', so it cannot take '{...}'")
                }
                continue
            }
            guard let children = item.children else { continue }
            guard let related = relatedTable(of: attribute) else {
                throw QueryError(message: "'\(item.name)' is not a relationship of table '\(table.name)', so it cannot take '{...}'")
            }
            try checkSelect(children, in: related)
        }
    }
}
