import GraphQL

/// Table-level rules: the primary key and relationships.
extension SchemaBuilder {
    /// Finds the table's primary key (the `@primaryKey` attribute, else the attribute named `id`),
    /// marks it, checks its type and returns its name.
    func settlePrimaryKey(of header: TypeHeader, attributes: inout [AttributeDefinition]) throws(SchemaError) -> String {
        let typeName = header.node.name.value
        let marked = attributes.indices.filter { attributes[$0].isPrimaryKey }
        if marked.count > 1 {
            let first = attributes[marked[0]]
            let second = attributes[marked[1]]
            throw SchemaError(
                code: .duplicatePrimaryKey,
                location: second.location,
                message: "table \(typeName) has more than one @primaryKey: '\(first.name)' and '\(second.name)'"
            )
        }
        guard let index = marked.first ?? attributes.firstIndex(where: { $0.name == "id" }) else {
            throw SchemaError(
                code: .missingPrimaryKey,
                location: header.location,
                message: "table \(typeName) has no primary key: mark one attribute @primaryKey"
            )
        }
        let key = attributes[index]
        if key.relationship != nil {
            throw SchemaError(
                code: .badPrimaryKey,
                location: key.location,
                message: "attribute '\(key.name)' of table \(typeName) is a relationship and cannot be the primary key"
            )
        }
        switch key.type {
        case .id, .string, .int, .long: break
        default:
            throw SchemaError(
                code: .badPrimaryKey,
                location: key.location,
                message: "primary key '\(key.name)' of table \(typeName) must be ID, String, Int or Long, got \(key.type)"
            )
        }
        if key.isSparseIndex {
            throw SchemaError(
                code: .badDirective,
                location: key.location,
                message: "@indexed(sparse: true) cannot apply to primary key '\(key.name)' of table \(typeName): every record has one"
            )
        }
        attributes[index].isPrimaryKey = true
        return key.name
    }

    /// Checks that each relationship's `from` attribute is a stored attribute of this table and
    /// each `to` attribute is a stored attribute of the related table.
    func checkRelationships(
        _ attributes: [AttributeDefinition],
        of header: TypeHeader,
        attributesByType: [String: [AttributeDefinition]]
    ) throws(SchemaError) {
        let typeName = header.node.name.value
        for attribute in attributes {
            guard let relationship = attribute.relationship, case .object(let target) = attribute.type.elementType else { continue }
            let (attributeName, owner, candidates): (String, String, [AttributeDefinition])
            switch relationship {
            case .from(let name): (attributeName, owner, candidates) = (name, typeName, attributes)
            case .to(let name): (attributeName, owner, candidates) = (name, target, attributesByType[target] ?? [])
            }
            let argument = relationship == .from(attributeName) ? "from" : "to"
            if let targetHeader = headers.first(where: { $0.node.name.value == target }), targetHeader.database != header.database {
                throw SchemaError(
                    code: .badRelationship,
                    location: attribute.location,
                    message: "@relationship on '\(attribute.name)': \(typeName) is in database '\(header.database)' but \(target) is in "
                        + "'\(targetHeader.database)'; relationships (joins, dotted filters) work within one database"
                )
            }
            guard let referenced = candidates.first(where: { $0.name == attributeName }) else {
                throw SchemaError(
                    code: .badRelationship,
                    location: attribute.location,
                    message: "@relationship(\(argument): \(attributeName)) on '\(attribute.name)': "
                        + "type '\(owner)' has no attribute '\(attributeName)'"
                )
            }
            if referenced.relationship != nil {
                throw SchemaError(
                    code: .badRelationship,
                    location: attribute.location,
                    message: "@relationship(\(argument): \(attributeName)) on '\(attribute.name)': "
                        + "'\(owner).\(attributeName)' is itself a relationship"
                )
            }
        }
    }

    /// The most attributes one `@index` may list.
    static let maximumCompositeAttributes = 8

    /// Reads the table's `@index(attributes: [...])` directives: each names two or more distinct
    /// `@indexed` scalar attributes of the table (not the primary key, which ends every index
    /// already), and no two list the same attributes in the same order.
    func readCompositeIndexes(of header: TypeHeader, attributes: [AttributeDefinition]) throws(SchemaError) -> [CompositeIndexDefinition] {
        let typeName = header.node.name.value
        var indexes: [CompositeIndexDefinition] = []
        for directive in header.indexDirectives {
            guard let argument = directive.arguments.first(where: { $0.name.value == "attributes" }) else {
                throw SchemaError(
                    code: .badDirective,
                    location: at(directive.loc),
                    message: "@index on \(typeName) needs the attributes it sorts by: @index(attributes: [\"a\", \"b\"])"
                )
            }
            if let other = directive.arguments.first(where: { $0.name.value != "attributes" }) {
                throw unknownArgument(other, of: directive, expected: ["attributes"])
            }
            guard let list = argument.value as? ListValue else {
                throw badArgument(argument, of: directive, "must be a list of attribute names, got \(Self.describe(argument.value))")
            }
            var names: [String] = []
            for value in list.values {
                guard let name = (value as? StringValue)?.value ?? (value as? EnumValue)?.value else {
                    throw badArgument(argument, of: directive, "must list attribute names, got \(Self.describe(value))")
                }
                guard !names.contains(name) else { throw badArgument(argument, of: directive, "names '\(name)' twice") }
                guard let attribute = attributes.first(where: { $0.name == name }) else {
                    throw badArgument(argument, of: directive, "names '\(name)', which is not an attribute of \(typeName)")
                }
                if attribute.isPrimaryKey {
                    throw badArgument(argument, of: directive, "names the primary key '\(name)': every index ends with it already; leave it out")
                }
                if attribute.relationship != nil {
                    throw badArgument(argument, of: directive, "names '\(name)', a relationship: only stored attributes can be indexed")
                }
                if attribute.type.isList || !attribute.type.isOrderedScalar {
                    throw badArgument(
                        argument, of: directive,
                        "names '\(name)' of type \(attribute.type): only ID, String, Int, Long, Float, Boolean and Date attributes sort in an index")
                }
                guard attribute.isIndexed else {
                    throw badArgument(argument, of: directive, "names '\(name)', which is not @indexed: mark it @indexed first")
                }
                names.append(name)
            }
            guard (2...Self.maximumCompositeAttributes).contains(names.count) else {
                throw badArgument(
                    argument, of: directive,
                    "must list 2 to \(Self.maximumCompositeAttributes) attributes, got \(names.count)"
                        + (names.count == 1 ? " (one attribute is indexed by @indexed alone)" : ""))
            }
            if indexes.contains(where: { $0.attributes == names }) {
                throw SchemaError(
                    code: .badDirective,
                    location: at(directive.loc),
                    message: "@index(attributes: [\(names.map { "\"\($0)\"" }.joined(separator: ", "))]) is declared twice on \(typeName)"
                )
            }
            indexes.append(CompositeIndexDefinition(attributes: names, location: at(directive.loc)))
        }
        return indexes
    }
}
