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
}
